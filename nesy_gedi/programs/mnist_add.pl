% MNIST addition (DeepProbLog): the sum of two handwritten digits.
nn(mnist_net, [X], Y, [0..9]) :: digit(X, Y).

addition(X, Y, Z) :- digit(X, DX), digit(Y, DY), Z is DX + DY.
