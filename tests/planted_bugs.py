"""One classic bug per stage, planted in a copy of the solution to test partial credit end to end.

``answer``: the grade_id of the answer cell replaced by ``source``; ``test``: the grade_id of the test
cell that must then fail (and only it). The checks' own unit tests cover every other classic bug.
"""

PLANTED_BUGS: dict[str, dict[str, str]] = {}
