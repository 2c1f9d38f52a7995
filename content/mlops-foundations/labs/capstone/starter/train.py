"""python train.py -> model.pkl (joblib) and metrics.json {"accuracy": <validation accuracy>}.

Reads data/train.csv. Deterministic: a second run must give the same predictions.
"""


def main() -> None:
    raise NotImplementedError("bring your train-model solution")


if __name__ == "__main__":
    main()
