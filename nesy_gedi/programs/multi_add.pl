% Multi-digit MNIST addition, digit by digit with carries.
%
% Numbers are lists of digit images, most significant first.  The digits of
% the sum (one more than the numbers have) are observed per example through
% the fixed one-hot network sum_digit, so a single circuit serves every sum
% and its size grows linearly in the number of digits.
nn(mnist_net, [X], Y, [0..9]) :: digit(X, Y).
nn(sum_digit, [Z], D, [0..9]) :: observed(Z, D).

% add(Xs, Ys, Zs, Carry): the digits Zs of Xs + Ys, and the carry out of it.
add([], [], [], 0).
add([X|Xs], [Y|Ys], [Z|Zs], Carry) :-
    add(Xs, Ys, Zs, C),
    digit(X, DX), digit(Y, DY),
    S is DX + DY + C,
    D is S mod 10, observed(Z, D),
    Carry is S // 10.

addition(Xs, Ys, [Z|Zs]) :- add(Xs, Ys, Zs, C), observed(Z, C).
