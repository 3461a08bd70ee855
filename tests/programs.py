"""ProbLog programs shared by several test modules."""

ALARM = """
person(john). person(mary).
0.7::burglary. 0.2::earthquake.
0.9::alarm :- burglary, earthquake.
0.8::alarm :- burglary, \\+earthquake.
0.1::alarm :- \\+burglary, earthquake.
0.8::calls(X) :- alarm, person(X).
0.1::calls(X) :- \\+alarm, person(X).
"""
