"""The training sample's splits on the driver: every entity of a few blocks holds one out; windows stay in a split."""

from __future__ import annotations

import numpy as np

from lakewatch.data.sampling import HOLDOUT, TRAIN, UNUSED, hold_out_one, within_split


def test_an_entity_without_a_held_out_block_holds_out_its_latest():
    # entity 0: blocks 1, 2, 3 drawn for training, a history row of block 0; entity 1: block 5 already held out;
    # entity 2: a single drawn block
    codes = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    block = np.array([0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 7, 7])
    split = np.array([UNUSED, TRAIN, TRAIN, TRAIN, TRAIN, TRAIN, TRAIN, TRAIN, TRAIN, HOLDOUT, HOLDOUT, TRAIN, TRAIN])
    target = split != UNUSED
    got = hold_out_one(codes, block, split, target)
    expected = split.copy()
    expected[5:7] = HOLDOUT
    assert got.tolist() == expected.tolist()
    assert split[5] == TRAIN  # the input is left as it was


def test_within_split_rejects_windows_that_reach_into_another_split():
    split = np.array([UNUSED, TRAIN, TRAIN, HOLDOUT, HOLDOUT])
    index = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [0, 0]])
    assert within_split(split, index, TRAIN).tolist() == [True, True, False, False, True]
    assert within_split(split, index, HOLDOUT).tolist() == [False, False, False, True, True]
