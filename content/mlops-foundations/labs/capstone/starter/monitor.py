"""psi(expected, actual, bins=10) and drift_report(reference, current, threshold=0.2):
bring your drift-monitor solution."""


def psi(expected, actual, bins=10):
    raise NotImplementedError


def drift_report(reference, current, threshold=0.2):
    raise NotImplementedError
