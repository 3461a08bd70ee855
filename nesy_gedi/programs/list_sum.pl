% The sum of a list of MNIST digit images (lists of any length; each length
% is its own query template, compiled once).  Plain DeepProbLog syntax (an
% explicit value list), so DeepProbLog itself runs it too.
nn(mnist_net, [X], Y, [0,1,2,3,4,5,6,7,8,9]) :: digit(X, Y).

sum_list([], 0).
sum_list([H|T], S) :- sum_list(T, Rest), digit(H, D), S is Rest + D.
