"""A JUnit XML report of unittest cases, with the standard library only: the unittest notebooks
import it from next to them and hand the report back as their exit value."""

import time
import traceback
import unittest
import xml.etree.ElementTree as ET


class JUnitResult(unittest.TestResult):
    """Collects each case's outcome, time, message and trace."""

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


def run(suite_name, *test_cases):
    """Runs the cases of each unittest.TestCase class; returns the JUnit report."""
    result = JUnitResult()
    for test_case in test_cases:
        unittest.defaultTestLoader.loadTestsFromTestCase(test_case).run(result)
    print(f"{result.testsRun} cases run, {len(result.failures)} failed, {len(result.errors)} errors")
    return junit_xml(result, suite_name)
