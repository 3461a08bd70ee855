digit(D) :- member(D, [0,1,2,3,4,5,6,7,8,9]).
nn(number, [X], D, digit) :: is_number(D) --> [X].
addition(S) --> is_number(A),
                is_number(B),
                {S is A + B}.
multi_addition(S, 1) --> addition(S).
multi_addition(S, L) --> {L > 1, L1 is L - 1},
                         addition(S1),
                         multi_addition(S2, L1),
                         {S is S1*(10**L1) + S2}.
