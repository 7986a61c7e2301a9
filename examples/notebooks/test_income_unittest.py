# Databricks notebook source
# MAGIC %md
# MAGIC Unit tests for the income model's feature code, with `unittest` and a JUnit writer that
# MAGIC needs nothing but the standard library. The notebook hands its report back as its exit
# MAGIC value, and DatabricksRunNotebookTest@1 shows each case in the pipeline's Tests tab.

# COMMAND ----------

import unittest


def bucket_income(income):
    if income < 0:
        raise ValueError("income cannot be negative")
    return "high" if income >= 100_000 else "low"


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

import time
import traceback
import xml.etree.ElementTree as ET


class JUnitResult(unittest.TestResult):
    """Collects each case's outcome, time, message and trace for a JUnit report."""

    def __init__(self):
        super().__init__()
        self.cases = []
        self._started = {}

    def startTest(self, test):
        super().startTest(test)
        self._started[test.id()] = time.perf_counter()

    def _record(self, test, status, detail=None, message=None):
        elapsed = time.perf_counter() - self._started.get(test.id(), time.perf_counter())
        module_class, _, name = test.id().rpartition(".")
        module_class = module_class.removeprefix("__main__.")
        self.cases.append((module_class, name, elapsed, status, message, detail))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failure", "".join(traceback.format_exception(*err)), str(err[1]))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", "".join(traceback.format_exception(*err)), str(err[1]))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", message=reason)


def junit_xml(result, suite_name):
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=suite_name, tests=str(len(result.cases)),
                          failures=str(len(result.failures)), errors=str(len(result.errors)),
                          skipped=str(len(result.skipped)))
    for class_name, name, elapsed, status, message, detail in result.cases:
        case = ET.SubElement(suite, "testcase", classname=class_name, name=name, time=f"{elapsed:.3f}")
        if status != "passed":
            element = ET.SubElement(case, status, message=message or "")
            element.text = detail
    return ET.tostring(suites, encoding="unicode")


result = JUnitResult()
unittest.defaultTestLoader.loadTestsFromTestCase(BucketIncome).run(result)
report = junit_xml(result, "income features")
print(f"{result.testsRun} cases run, {len(result.failures)} failed, {len(result.errors)} errors")

# COMMAND ----------

dbutils.notebook.exit(report)
