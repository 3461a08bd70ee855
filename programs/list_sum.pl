% The sum of a list of MNIST digit images (lists of any length; each length
% is its own query template, compiled once).
nn(mnist_net, [X], Y, [0..9]) :: digit(X, Y).

sum_list([], 0).
sum_list([H|T], S) :- sum_list(T, Rest), digit(H, D), S is Rest + D.
