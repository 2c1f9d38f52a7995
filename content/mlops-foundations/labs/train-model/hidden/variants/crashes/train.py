"""Wrong on purpose: reads a file that does not exist, so train.py exits 1."""

import pandas as pd

df = pd.read_csv("data/training.csv")  # mistake: the file is data/train.csv
print(df.shape)
