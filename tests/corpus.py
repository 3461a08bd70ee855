"""An exactness corpus: ProbLog programs, each compared with problog's own SDD evaluation.

Written for this test suite or adapted from ProbLog's tutorial and documentation
(Bayesian networks, smokers, coins, dice, graphs, negation, lists, builtins,
arithmetic).  Every program carries its own ``query/1`` and ``evidence`` facts.
"""

from .programs import ALARM, SMOKERS

SPRINKLER = """
0.5::cloudy.
0.1::sprinkler :- cloudy.  0.5::sprinkler :- \\+cloudy.
0.8::rain :- cloudy.       0.2::rain :- \\+cloudy.
0.99::wet :- sprinkler, rain.
0.9::wet :- sprinkler, \\+rain.
0.9::wet :- \\+sprinkler, rain.
"""
ASIA = """
0.01::asia.  0.5::smoke.
0.05::tub :- asia.  0.01::tub :- \\+asia.
0.1::lung :- smoke. 0.01::lung :- \\+smoke.
0.6::bronc :- smoke. 0.3::bronc :- \\+smoke.
either :- tub. either :- lung.
0.98::xray :- either. 0.05::xray :- \\+either.
0.9::dysp :- either, bronc. 0.7::dysp :- either, \\+bronc.
0.8::dysp :- \\+either, bronc. 0.1::dysp :- \\+either, \\+bronc.
"""
GRAPH = """
0.6::edge(1,2). 0.1::edge(1,3). 0.4::edge(2,5). 0.3::edge(2,6).
0.3::edge(3,4). 0.8::edge(4,5). 0.2::edge(5,6). 0.5::edge(6,1).
path(X,Y) :- edge(X,Y).
path(X,Y) :- edge(X,Z), Y \\= Z, path(Z,Y).
"""
UNDIRECTED = """
0.7::e(a,b). 0.4::e(b,c). 0.6::e(c,a). 0.5::e(c,d).
conn(X,Y) :- e(X,Y). conn(X,Y) :- e(Y,X).
reach(X,Y) :- conn(X,Y).
reach(X,Y) :- conn(X,Z), reach(Z,Y).
"""
DICE = """
1/6::die(D,1); 1/6::die(D,2); 1/6::die(D,3); 1/6::die(D,4); 1/6::die(D,5); 1/6::die(D,6) :- dice(D).
dice(1). dice(2).
sum(S) :- die(1,A), die(2,B), S is A + B.
odd(D) :- die(D,X), X mod 2 =:= 1.
double :- die(1,X), die(2,X).
"""
COINS = """
0.5::heads(c1). 0.6::heads(c2). 0.3::heads(c3).
coin(c1). coin(c2). coin(c3).
tails(C) :- coin(C), \\+heads(C).
win :- heads(c1), heads(c2).
win :- heads(c3).
"""
BIASED = """
0.2::biased.
0.9::toss_heads(N) :- biased, between(1,3,N).
0.5::toss_heads(N) :- \\+biased, between(1,3,N).
all_heads :- toss_heads(1), toss_heads(2), toss_heads(3).
"""

CORPUS: dict[str, str] = {
    # --- Bayesian networks, with and without evidence
    "alarm": ALARM + "query(burglary). query(alarm). query(calls(X)).",
    "alarm, evidence calls": ALARM + "evidence(calls(john)). evidence(calls(mary)). query(burglary). query(earthquake).",
    "alarm, evidence/2 false": ALARM + "evidence(calls(mary), false). query(burglary). query(alarm).",
    "alarm, negated evidence/1": ALARM + "evidence(\\+alarm). query(burglary). query(calls(X)).",
    "sprinkler": SPRINKLER + "query(wet). query(rain). query(sprinkler).",
    "sprinkler, wet grass": SPRINKLER + "evidence(wet). query(rain). query(sprinkler). query(cloudy).",
    "sprinkler, not raining": SPRINKLER + "evidence(rain, false). evidence(wet). query(sprinkler).",
    "asia": ASIA + "query(tub). query(lung). query(dysp).",
    "asia, positive xray": ASIA + "evidence(xray). query(tub). query(lung). query(bronc).",
    "asia, two observations": ASIA + "evidence(xray, true). evidence(dysp, false). query(lung). query(smoke).",
    # --- smokers
    "smokers": SMOKERS + "query(smokes(X)). query(asthma(2)).",
    "smokers, evidence": SMOKERS + "evidence(smokes(2)). evidence(influences(4,2), false). query(smokes(1)). query(asthma(4)).",
    "smokers, no asthma": SMOKERS + "evidence(asthma(1), false). query(smokes(_)).",
    # --- coins and dice
    "coins": COINS + "query(win). query(tails(X)).",
    "coins, evidence win": COINS + "evidence(win). query(heads(X)).",
    "biased coin": BIASED + "query(all_heads). query(biased).",
    "biased coin, observed heads": BIASED + "evidence(toss_heads(1)). evidence(toss_heads(2)). query(biased). query(toss_heads(3)).",
    "two dice": DICE + "query(sum(S)). query(double).",
    "two dice, evidence odd": DICE + "evidence(odd(1)). evidence(odd(2), false). query(sum(S)).",
    "dice, conditional double": DICE + "evidence(double). query(die(1,X)).",
    "annotated disjunction, not summing to 1": "0.2::c(r); 0.3::c(g); 0.1::c(b). colour :- c(_). query(c(X)). query(colour).",
    "annotated disjunction with body": "0.6::sun. 0.5::w(hot); 0.3::w(mild) :- sun. 0.1::w(hot); 0.8::w(cold) :- \\+sun. query(w(X)).",
    "two annotated disjunctions, shared head": "0.3::a; 0.4::b. 0.5::a; 0.1::c. query(a). query(b). query(c).",
    "annotated disjunction, evidence": "0.2::c(1); 0.5::c(2); 0.3::c(3). big :- c(X), X >= 2. evidence(big). query(c(X)).",
    "annotated disjunction, negated": "0.4::c(1); 0.6::c(2). n :- \\+c(1). query(n).",
    "urn": """0.4::draw(1,red); 0.6::draw(1,blue). 0.3::draw(2,red); 0.7::draw(2,blue).
same :- draw(1,C), draw(2,C). query(same). query(draw(2,X)).""",
    # --- graphs with cycles
    "graph reachability": GRAPH + "query(path(1,5)). query(path(1,6)). query(path(6,5)).",
    "graph, all targets": GRAPH + "query(path(1,X)).",
    "graph, evidence": GRAPH + "evidence(path(1,6)). query(edge(1,2)). query(path(1,4)).",
    "graph, negative evidence": GRAPH + "evidence(path(2,6), false). query(path(1,6)).",
    "undirected cycle": UNDIRECTED + "query(reach(a,d)). query(reach(a,a)). query(reach(d,X)).",
    "self loop": "0.5::e(1,1). 0.4::e(1,2). r(X,Y) :- e(X,Y). r(X,Y) :- e(X,Z), r(Z,Y). query(r(1,2)). query(r(1,1)).",
    "mutual recursion": "0.3::s. 0.6::t. p :- q. p :- s. q :- p. q :- t. query(p). query(q).",
    # --- negation
    "negation of a derived atom": "0.3::a. 0.6::b. c :- a, b. d :- \\+c. query(d). query(c).",
    "double negation": "0.3::a. na :- \\+a. nna :- \\+na. query(nna).",
    "negation with variables": "p(1). p(2). 0.3::q(1). 0.8::q(2). r(X) :- p(X), \\+q(X). query(r(X)).",
    "not/1": "0.25::a. b :- not(a). query(b).",
    "negation inside recursion-free rules": "0.5::x. 0.4::y. z :- x, \\+y. z :- \\+x, y. query(z).",
    "negated query": "0.3::a. query(\\+a).",
    # --- lists and findall
    "findall and length": "0.3::a(1). 0.6::a(2). a(3). n(N) :- findall(X, a(X), L), length(L, N). query(n(N)).",
    "findall sum": ":- use_module(library(lists)).\n0.5::x(1). 0.5::x(2). 0.2::x(3). s(S) :- findall(X, x(X), L), sum_list(L, S). query(s(S)).",
    "member and append": ":- use_module(library(lists)).\n0.4::in(a). 0.7::in(b). both :- append([a], [b], L), member(a, L), member(b, L), in(a), in(b). query(both).",
    "list answers": "0.3::l([1,2]). 0.4::l([]). 0.5::l((1,2)). query(l(X)).",
    "forall": "0.3::a(1). 0.6::a(2). b(1). 0.5::b(2). ok :- forall(a(X), b(X)). query(ok).",
    "list recursion": """0.5::bit(1). 0.3::bit(2). 0.8::bit(3).
count([], 0).
count([H|T], N) :- count(T, M), (bit(H), N is M + 1 ; \\+bit(H), N = M).
query(count([1,2,3], N)).""",
    "nth and reverse": ":- use_module(library(lists)).\n0.6::keep. r(X) :- reverse([a,b,c], L), nth0(1, L, X), keep. query(r(X)).",
    # --- builtins and arithmetic
    "between": "0.5::c(X) :- between(1,3,X). s :- between(1,3,X), c(X), X > 2. query(s). query(c(X)).",
    "arithmetic comparison": "0.4::v(1). 0.3::v(5). 0.2::v(9). big :- v(X), X * 2 > 9. query(big).",
    "is/2 and mod": "0.5::n(4). 0.5::n(7). even :- n(X), 0 is X mod 2. query(even).",
    "probability expressions": "0.5*0.4::a. 1-0.75::b. 1/3::c. query(a). query(b). query(c).",
    "call/N": "0.3::a(1). 0.6::a(2). p(X) :- call(a, X). query(p(X)).",
    "atom builtins": "0.4::name(ab). ok :- name(N), atom(N), \\+ atom_number(N, _). query(ok).",
    "term comparison": "0.5::t(a). 0.5::t(b). first :- t(X), X @< b. query(first).",
    "subquery": "0.3::a. p :- subquery(a, P), P > 0.2. query(p).",
    "unification and \\=": "0.5::f(a). 0.5::f(b). diff :- f(X), f(Y), X \\= Y. query(diff).",
    # --- query and evidence rules, zero probability, consult-free structure
    "query rule": "0.3::a(1). 0.6::a(2). p(X) :- a(X). query(p(X)) :- between(1, 2, X).",
    "query rule over facts": "n(1). n(2). n(3). 0.5::odd(X) :- n(X), X mod 2 =:= 1. query(odd(X)) :- n(X).",
    "evidence rule": "0.5::c(1). 0.5::c(2). 0.3::s(X) :- c(X). evidence(c(X), true) :- between(1, 1, X). query(s(_)).",
    "zero probability ground query": "0.3::a. b :- a, \\+a. query(b). query(a).",
    "failed builtin": "0.3::a. p :- a, 1 > 2. query(p). query(a).",
    "certain query": "a. 0.4::b. c :- a. c :- b. query(c).",
    "neck <-": "0.3::a. p <- a. query(p).",
    "anonymous variables": "0.5::e(1,2). 0.4::e(2,3). 0.3::e(1,3). src(X) :- e(X,_). query(src(X)).",
    "anonymous variables in a query": ":- use_module(library(lists)). 0.6::k. w(L) :- k, append([_, _], L). "
                                      "query(append([_, _], [p, q])). query(append([_, _, _], [1, 2])). "
                                      "query(w([r, s, t])).",
    "clause/2": "p :- q. r :- s, t ; u. 0.3::q. b(X, P) :- clause(X, q, P). h(X, P) :- clause(p, X, P). "
                "g(X, P) :- clause(r, X, P). query(b(_, _)). query(h(_, _)). query(g(_, _)).",
    "random variable in head": "0.5::p(X). query(p(1)). query(p(foo)).",
    "probabilistic clause with variables": "n(1). n(2). 0.3::q(X) :- n(X). r :- q(1), q(2). query(r).",
}

# ProbLog's grounder rejects these; ours must say "not supported" instead of a wrong number.
NOT_SUPPORTED = {
    "cut": ("0.3::a. 0.6::b. p :- a, !. p :- b. query(p).", "cut"),
    "if-then-else": ("0.3::a. p :- (a -> true ; fail). query(p).", "if-then-else"),
    "assert": ("p :- assertz(q). query(p).", "assertz"),
    "learnable probability per grounding": ("t(_, X)::a(X). query(a(1)).", "a learnable label takes one argument"),
}
