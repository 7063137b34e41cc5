"""What can be benchmarked: kinds, dtypes, sizes, stackings. No NumPy here, so that the command
line can read these before it pins the thread counts and NumPy loads."""

KINDS = ("rnn", "lstm", "lstmp", "gru")
KIND_LABEL = {"rnn": "RNN (tanh)", "lstm": "LSTM", "lstmp": "LSTM proj", "gru": "GRU"}
DTYPES = ("float32", "float64")
SIZES = ((10, 1, 4, 8), (50, 16, 32, 64), (100, 32, 128, 256), (200, 64, 256, 512))
CONFIGS = ((1, 1), (2, 1), (1, 2), (2, 2))  # (num_layers, num_directions)
SCALING_T = (100, 200, 400, 800)
