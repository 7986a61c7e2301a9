"""Feature code of the income model: the package the pipeline builds as a wheel and the
notebooks in tests/ import on Databricks."""

__version__ = "1.0.0"

HIGH_INCOME = 100_000


def bucket_income(income):
    """`high` from HIGH_INCOME a year up, else `low`; a negative income is refused."""
    if income < 0:
        raise ValueError("income cannot be negative")
    return "high" if income >= HIGH_INCOME else "low"


def yearly(monthly):
    """A monthly income as a yearly one."""
    if monthly < 0:
        raise ValueError("income cannot be negative")
    return monthly * 12
