"""Mean average precision for the detector tests (a test utility, not emitted code).

PASCAL VOC's definition (2010 onwards): per class, the detections of every image sorted by
score; each is a true positive when its best-overlapping ground-truth box of that class in
its image has IoU >= iou_threshold and was not claimed by a higher-scoring detection,
otherwise a false positive (a duplicate of a claimed box included). The average precision is
the area under the precision-recall curve after making precision non-increasing
(all-point interpolation); mAP is its mean over the classes that have ground truth.
"""

import numpy as np


def box_iou(box, boxes):
    """IoU of one (4,) box (x1, y1, x2, y2) with each of (N, 4) boxes -> (N,)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    left = np.maximum(box[0], boxes[:, 0])
    top = np.maximum(box[1], boxes[:, 1])
    right = np.minimum(box[2], boxes[:, 2])
    bottom = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def average_precision(recall, precision):
    """Area under a precision-recall curve (points in detection order), precision made
    non-increasing from the right first (VOC all-point interpolation)."""
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def class_average_precision(predictions, ground_truths, label, iou_threshold=0.5):
    """AP of one class label; None when no image has a ground-truth box of that class."""
    truth = [
        np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[np.asarray(classes) == label]
        for boxes, classes in ground_truths
    ]
    n_truth = sum(len(boxes) for boxes in truth)
    if n_truth == 0:
        return None
    found = []  # (score, image, box) for every detection of this class
    for image, (boxes, scores, classes) in enumerate(predictions):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        for box, score, cls in zip(boxes, np.ravel(scores), np.ravel(classes), strict=True):
            if cls == label:
                found.append((float(score), image, box))
    # Stable sort: equal scores keep their image order, so the result is deterministic.
    found.sort(key=lambda item: -item[0])
    claimed = [np.zeros(len(boxes), dtype=bool) for boxes in truth]
    hits = np.zeros(len(found))
    for rank, (_, image, box) in enumerate(found):
        if len(truth[image]) == 0:
            continue
        overlaps = box_iou(box, truth[image])
        best = int(np.argmax(overlaps))
        if overlaps[best] >= iou_threshold and not claimed[image][best]:
            claimed[image][best] = True
            hits[rank] = 1.0
    true_positives = np.cumsum(hits)
    recall = true_positives / n_truth
    precision = true_positives / np.arange(1, len(found) + 1)
    return average_precision(recall, precision)


def mean_average_precision(predictions, ground_truths, n_classes, iou_threshold=0.5):
    """mAP at iou_threshold over classes 1..n_classes that have ground truth.

    predictions: per image, (boxes (N, 4), scores (N,), classes (N,)) with classes in
    1..n_classes and padding removed; ground_truths: per image, (boxes (G, 4), classes (G,)).
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(
            f"{len(predictions)} images of predictions for {len(ground_truths)} of truth"
        )
    aps = [
        class_average_precision(predictions, ground_truths, label, iou_threshold)
        for label in range(1, n_classes + 1)
    ]
    aps = [ap for ap in aps if ap is not None]
    if not aps:
        raise ValueError("no ground-truth boxes: mAP is undefined")
    return float(np.mean(aps))
