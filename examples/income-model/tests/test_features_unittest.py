# Databricks notebook source
# MAGIC %md
# MAGIC `unittest` cases of the income model's feature code, from the wheel the pipeline built
# MAGIC and installed for this run (`libraries`). The JUnit report, written with the standard
# MAGIC library only (`junit_report.py` next to this notebook), is handed back as the exit value:
# MAGIC DatabricksRunNotebookTest@1 shows each case in the pipeline's Tests tab.

# COMMAND ----------

import unittest

import income_model
from income_model import bucket_income

print(f"testing income_model {income_model.__version__} from {income_model.__file__}")


class BucketIncome(unittest.TestCase):
    def test_high(self):
        self.assertEqual(bucket_income(150_000), "high")

    def test_low(self):
        self.assertEqual(bucket_income(20_000), "low")

    def test_negative_is_refused(self):
        with self.assertRaises(ValueError):
            bucket_income(-1)

    @unittest.skip("the 2027 brackets are not published yet")
    def test_brackets_2027(self):
        pass

# COMMAND ----------

import junit_report

dbutils.notebook.exit(junit_report.run("income features", BucketIncome))
