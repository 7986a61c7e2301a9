# Databricks notebook source
# MAGIC %md
# MAGIC A test report without a JUnit writer: the small JSON report DatabricksRunNotebookTest@1
# MAGIC reads (suites, cases, status, duration in seconds, message, trace).

# COMMAND ----------

import json
import time
import traceback

from income_model import yearly


def test_monthly_to_yearly():
    assert yearly(1000) == 12000, "12 months a year"


def test_zero_income():
    assert yearly(0) == 0, "zero stays zero"

# COMMAND ----------

cases = []
for test in [test_monthly_to_yearly, test_zero_income]:
    started = time.perf_counter()
    case = {"name": test.__name__, "status": "passed"}
    try:
        test()
    except AssertionError as failure:
        case.update(status="failed", message=str(failure), trace=traceback.format_exc())
    except Exception as error:  # the test broke before its assertion
        case.update(status="error", message=repr(error), trace=traceback.format_exc())
    case["duration"] = round(time.perf_counter() - started, 3)
    cases.append(case)

dbutils.notebook.exit(json.dumps({"suites": [{"name": "income.yearly", "cases": cases}]}))
