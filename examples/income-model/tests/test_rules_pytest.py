# Databricks notebook source
# MAGIC %md
# MAGIC Runs the pytest tests in `rules/` next to this notebook, against the income_model wheel
# MAGIC installed for this run, and hands back their JUnit report as a file in a Unity Catalog
# MAGIC volume: the exit value `{"junit": "/Volumes/..."}`
# MAGIC tells DatabricksRunNotebookTest@1 where to read it (an exit value is cut at 5 MB; a file
# MAGIC is not).

# COMMAND ----------

dbutils.widgets.text("report_dir", "/Volumes/main/ci/test_reports")

# COMMAND ----------

import os
import sys
import uuid

import pytest

# Tests import the code they test from the repository, and must not leave .pyc files there.
sys.dont_write_bytecode = True
report = os.path.join(dbutils.widgets.get("report_dir"), f"pytest-{uuid.uuid4().hex}.xml")
exit_code = pytest.main(["rules", "-p", "no:cacheprovider", "-q", f"--junitxml={report}"])
print(f"pytest exited with {exit_code}; report at {report}")

# COMMAND ----------

dbutils.notebook.exit(f'{{"junit": "{report}"}}')
