"""Hand cases for the mAP test utility (tests/detection_metrics.py) the detector tests use."""

import numpy as np
import pytest
from detection_metrics import average_precision, box_iou, mean_average_precision

GT = [0.0, 0.0, 10.0, 10.0]


def image(boxes, scores, classes):
    return (
        np.array(boxes, float).reshape(-1, 4),
        np.array(scores, float),
        np.array(classes),
    )


def test_box_iou_hand_cases():
    np.testing.assert_allclose(
        box_iou(np.array(GT), [GT, [0, 0, 10, 5], [5, 5, 15, 15], [20, 20, 30, 30]]),
        [1.0, 0.5, 25 / 175, 0.0],
    )
    assert box_iou(np.array([1.0, 1, 1, 1]), [[1.0, 1, 1, 1]])[0] == 0.0  # empty boxes


def test_perfect_and_empty_detections():
    truth = [(np.array([GT]), np.array([1]))]
    assert mean_average_precision([image([GT], [0.9], [1])], truth, 1) == 1.0
    assert mean_average_precision([image([], [], [])], truth, 1) == 0.0


def test_false_positive_ranked_first_halves_the_precision():
    truth = [(np.array([GT]), np.array([1]))]
    found = image([[50, 50, 60, 60], GT], [0.9, 0.8], [1, 1])
    assert mean_average_precision([found], truth, 1) == pytest.approx(0.5)


def test_duplicate_detection_is_a_false_positive_after_the_hit():
    truth = [(np.array([GT]), np.array([1]))]
    found = image([GT, [0, 0, 10, 9]], [0.9, 0.8], [1, 1])
    assert mean_average_precision([found], truth, 1) == 1.0  # recall 1 at precision 1
    found = image([[0, 0, 10, 9], GT], [0.9, 0.8], [1, 1])
    assert mean_average_precision([found], truth, 1) == 1.0  # either one claims it


def test_iou_threshold_is_inclusive():
    truth = [(np.array([GT]), np.array([1]))]
    assert mean_average_precision([image([[0, 0, 10, 5]], [1], [1])], truth, 1) == 1.0
    assert mean_average_precision([image([[0, 0, 10, 4.9]], [1], [1])], truth, 1) == 0.0
    found = [image([[0, 0, 10, 7]], [1], [1])]
    assert mean_average_precision(found, truth, 1, iou_threshold=0.75) == 0.0


def test_interpolated_precision_on_a_ranked_list():
    # Three objects; ranked hits TP FP TP FP TP: precision 1, .5, 2/3, .5, .6 at recall
    # 1/3, 1/3, 2/3, 2/3, 1 -> interpolated 1, 2/3, .6 on the three recall steps.
    truth = [(np.array([GT, [20, 0, 30, 10], [40, 0, 50, 10]]), np.array([1, 1, 1]))]
    boxes = [GT, [90, 90, 99, 99], [20, 0, 30, 10], [80, 80, 85, 85], [40, 0, 50, 10]]
    found = image(boxes, [0.9, 0.8, 0.7, 0.6, 0.5], [1] * 5)
    expected = (1 + 2 / 3 + 0.6) / 3
    assert mean_average_precision([found], truth, 1) == pytest.approx(expected)
    assert average_precision(np.array([1 / 3, 1]), np.array([1.0, 0.6])) == pytest.approx(
        1 / 3 + 2 / 3 * 0.6
    )


def test_classes_and_images_are_kept_apart():
    truth = [
        (np.array([GT]), np.array([1])),
        (np.array([GT]), np.array([2])),
    ]
    # Image 0's class-2 detection does not match image 1's class-2 box; the wrong class on
    # the right box is a miss; class 3 has no ground truth and is left out of the mean.
    found = [
        image([GT, GT, [0, 0, 5, 5]], [0.9, 0.95, 0.1], [1, 2, 3]),
        image([GT], [0.5], [2]),
    ]
    # class 1: AP 1; class 2: FP (image 0) at 0.95 then TP at 0.5 -> AP 0.5
    assert mean_average_precision(found, truth, 3) == pytest.approx(0.75)


def test_refuses_undefined_cases():
    with pytest.raises(ValueError, match="2 images of predictions for 1"):
        mean_average_precision([image([], [], [])] * 2, [(np.zeros((0, 4)), [])], 1)
    with pytest.raises(ValueError, match="no ground-truth"):
        mean_average_precision([image([GT], [1], [1])], [(np.zeros((0, 4)), [])], 1)
