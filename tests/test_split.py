"""The stratified split the core install uses (datasets' port of scikit-learn's splitter, scikit-learn's RNG)."""

from collections import Counter

import numpy as np
import pytest

from nlp_cv_tricks.data.split import stratified_split

from conftest import shared_data


def test_partition_sizes_stratification_and_seed():
    y = [0] * 70 + [1] * 20 + [2] * 10
    tr, te = stratified_split(y, 0.2, seed=3)
    assert sorted(tr + te) == list(range(100)) and len(te) == 20  # ceil(0.2 * 100) rows, each row once
    assert Counter(y[i] for i in te) == {0: 14, 1: 4, 2: 2}  # every class in proportion
    assert stratified_split(y, 0.2, seed=3) == (tr, te) and stratified_split(y, 0.2, seed=4) != (tr, te)
    with pytest.raises(ValueError, match="single row cannot be stratified: 2"):
        stratified_split([0, 0, 1, 1, 2], 0.4, seed=0)
    with pytest.raises(ValueError, match="cannot each hold all 3 classes"):
        stratified_split([0, 0, 1, 1, 2, 2], 0.2, seed=0)


@pytest.mark.parametrize("name", ["rt-polarity.all", "TREC.train.all"])
@pytest.mark.parametrize("seed", [42, 1, 7])
def test_same_rows_as_scikit_learn_on_the_recipes_data(name, seed):
    """mr_textcnn / trec_textcnn carve their dev split with it: the rows are the ones scikit-learn's
    train_test_split(stratify=...) picked before the core install dropped scikit-learn."""
    from sklearn.model_selection import train_test_split

    path = shared_data(f"kim2014/{name}")
    # split on "\n" only: latin-1 text holds U+0085, which str.splitlines() also takes for a line break
    y = [ln.split(" ", 1)[0] for ln in path.read_text(encoding="latin-1").split("\n") if ln.strip()]
    tr, te = stratified_split(y, 0.1, seed)
    sk_tr, sk_te = train_test_split(np.arange(len(y)), test_size=0.1, random_state=seed, stratify=y)
    assert (tr, te) == (sk_tr.tolist(), sk_te.tolist())
