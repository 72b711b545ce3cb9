"""The one error type fastnn raises for anything a user can get wrong."""


class FastnnError(Exception):
    """Bad input, a bad file or a failed download: the message names the file and the problem.

    The command line prints it as one line and exits with status 2; no traceback.
    """
