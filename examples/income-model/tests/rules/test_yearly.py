"""pytest tests of the income rules in the income_model wheel, collected by the
test_rules_pytest notebook."""

import pytest

from income_model import yearly


def test_yearly():
    assert yearly(1000) == 12000


def test_negative_income_is_refused():
    with pytest.raises(ValueError):
        yearly(-5)


@pytest.mark.parametrize("monthly", [0, 1, 2500])
def test_yearly_is_twelve_months(monthly):
    assert yearly(monthly) == 12 * monthly
