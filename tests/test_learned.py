"""No arm a notebook compares sits at or below always answering the largest class (#27).

A model there has learned nothing, and a gap quoted against it measures only the other arm.
Arms the notebooks name as a baseline or a trap are left out: 00's random weights, 02's
BatchNorm in training mode, 03's naive high learning rate, 06's label-changing and extreme
augmentations, 15's BatchNorm-only arm (it names it below raw pixels), and 01's scratch
points the notebook itself marks as not learned. 07, 08 and 13
record the largest class's share over every set they score (PACS domains, and digits).
"""

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# notebook -> {baseline metric: [arm paths]}; a path is keys and list indices joined by ".",
# and "*" stands for every item of a list or every value of a dict
ARMS = {
    "00_start_here": {"majority_acc": ["knn_pretrained_acc"]},
    "01_feature_extraction": {"majority_acc": ["fe_acc", "scratch_acc", "pixels_acc",
                                               "fe_logreg_acc",
                                               "fe_inloop_acc", "data_efficiency.*.fe_mean"]},
    "02_partial_fine_tuning": {"majority_acc": ["partial_ft_acc", "head_only_acc", "fe_acc",
                                                "bn_inference_acc", "bn_restored_acc",
                                                "per_k.*.acc_mean"]},
    "03_full_fine_tuning": {"majority_acc": ["full_ft_acc", "full_ft_best_epoch_acc", "fe_acc",
                                             "l2sp_acc", "weight_decay_acc", "converged_acc"]},
    "04_when_fine_tuning_pays": {"majority_acc": ["pixels_acc", "converged_acc"],
                                 "far_majority_acc": ["far_fe_acc", "far_ft_acc", "far_pixels_acc",
                                                      "far_scratch_acc"]},
    "05_data_augmentation": {"majority_acc": ["frozen_curve.*.no_aug_acc", "frozen_curve.*.aug_acc",
                                              "frozen_curve.*.no_aug_converged_acc",
                                              "frozen_curve.*.aug_converged_acc"],
                             "digit_majority_acc": ["low_data_curve.*.no_aug_acc",
                                                    "low_data_curve.*.aug_acc",
                                                    "low_data_curve.*.pixels_acc",
                                                    "low_data_curve.*.frozen_acc",
                                                    "low_data_curve.*.frozen_aug_acc"]},
    "06_augmentation_in_practice": {"majority_acc": ["mixup_converged_acc", "cutmix_converged_acc",
                                                     "no_aug_converged_acc", "mixup_acc",
                                                     "cutmix_acc", "no_aug_acc",
                                                     "all_images_acc.none",
                                                     "all_images_acc.augmenter", "clean_acc",
                                                     "tta_acc", "tta_flip_acc"]},
    "07_measure_a_shift": {"majority_acc": ["source_acc", "corruption_clean_acc",
                                            "targets.*.source_only_acc", "corruptions.*.acc",
                                            "corruptions.*.augment_acc"],
                           "digit_majority_acc": ["mnist_heldout_acc", "usps_source_only_acc",
                                                  "usps_stretched_acc"]},
    "08_repair_a_shift": {"majority_acc": ["source_acc", "targets.*.source_only_acc",
                                           "targets.*.adabn_acc", "targets.*.tent_acc",
                                           "targets.*.coral_acc", "targets.*.augment_acc",
                                           "targets.*.adabn_pool_acc",
                                           "targets.*.fewshot_1_per_class_acc",
                                           "targets.*.fewshot_5_per_class_acc",
                                           "targets.*.fewshot_10_per_class_acc",
                                           "self_training.*"],
                          "digit_majority_acc": ["mnist_heldout_acc", "usps_source_only_acc",
                                                 "usps_adabn_acc", "usps_fewshot_acc"]},
    "09_trust_your_model": {"majority_acc": ["photo_acc", "sketch_acc"]},
    "10_your_own_data": {"majority_acc": ["val_acc", "fe_acc", "ft_acc"]},
    "11_word_vectors": {"majority_acc": ["scratch_acc", "glove_frozen_acc", "glove_ft_acc",
                                         "fe_glove_logreg_acc", "all_counts_acc",
                                         "all_tfidf_acc", "curve.*.counts_mean",
                                         "curve.*.tfidf_mean", "curve.*.glove_mean"]},
    "12_pretrained_transformer": {"majority_acc": ["transformer_all_acc", "transformer_ft_acc",
                                                   "lora_acc", "transformer_probe_acc",
                                                   "all_counts_acc", "all_tfidf_acc",
                                                   "all_glove_acc", "all_scratch_acc",
                                                   "curve.*.counts_mean", "curve.*.tfidf_mean",
                                                   "curve.*.glove_mean",
                                                   "curve.*.transformer_mean",
                                                   "ft_curve.*.ft_acc", "ft_curve.*.probe_acc",
                                                   "ft_curve.*.counts_acc",
                                                   "ft_curve.*.tfidf_acc"]},
    "13_probe_or_fine_tune": {"majority_acc": ["by_recipe.*.*.0", "photo_probes.*.*.0"],
                              "digit_majority_acc": ["digits_by_recipe.*.*.0",
                                                     "digit_baselines.*.*.0"]},
    "14_weight_averaging": {"digit_majority_acc": ["wise_id_accs.*", "wise_ood_accs.*",
                                                   "soups.*.*"]},
    "15_tune_a_sliver": {"digit_majority_acc": ["full_ft_acc", "peft.*.acc", "pixels_acc",
                                                "converged_head_acc", "surgical.*"],
                         # BatchNorm (peft.1) is named in 15 as a trap below pixels
                         "pixels_acc": ["full_ft_acc", "converged_head_acc", "peft.2.acc"]},
    "16_choose_what_to_transfer": {"digit_majority_acc": ["far_best_block_acc"]},
    "17_ship_it_small": {"digit_majority_acc": ["teacher_acc", "teacher_seeds_acc",
                                                "teacher_seeds_shift_acc", "teacher_scratch_acc",
                                                "teacher_scratch_shift_acc", "pixels_acc",
                                                "pixels_shift_acc", "student_hard_acc",
                                                "student_soft_acc", "student_transfer_acc",
                                                "teacher_shift_acc", "student_hard_shift_acc",
                                                "student_soft_shift_acc",
                                                "student_transfer_shift_acc",
                                                "files.*.acc", "files.*.shift_acc"]},
}


def values(metrics, path: str) -> list[tuple[str, float]]:
    """(label, value) of every number a path reaches; "*" fans out over a list or a dict."""
    found = [("", metrics)]
    for part in path.split("."):
        step = []
        for label, node in found:
            if part == "*":
                items = node.items() if isinstance(node, dict) else enumerate(node)
            else:
                items = [(part, node[int(part) if isinstance(node, list) else part])]
            step += [(f"{label}.{k}" if label else str(k), v) for k, v in items]
        found = step
    return found


def arms_that_learned_nothing(metrics: dict, spec: dict) -> list[str]:
    bad = []
    for baseline, arms in spec.items():
        for arm in arms:
            bad += [f"{label} {v:.3f} <= {baseline} {metrics[baseline]:.3f}"
                    for label, v in values(metrics, arm) if v <= metrics[baseline]]
    return bad


def test_the_rule_catches_an_arm_at_the_majority_class():
    metrics = {"majority_acc": 0.54, "a": 0.8, "b": 0.54, "rows": [{"x": 0.9}, {"x": 0.5}],
               "table": {"A": {"ID": [0.9, 0.01]}, "B": {"ID": [0.3, 0.02]}}}
    spec = {"majority_acc": ["a", "b", "rows.*.x", "table.*.*.0"]}
    assert arms_that_learned_nothing(metrics, spec) == [
        "b 0.540 <= majority_acc 0.540", "rows.1.x 0.500 <= majority_acc 0.540",
        "table.B.ID.0 0.300 <= majority_acc 0.540"]


@pytest.mark.after_notebooks
@pytest.mark.parametrize("notebook", sorted(ARMS))
def test_every_compared_arm_learned_something(notebook):
    """Runs after nbval has executed the notebooks (conftest orders it last)."""
    path = ROOT / "build" / "smoke" / "metrics" / f"{notebook}.json"
    if not path.exists() or path.stat().st_mtime < float(os.environ["TLU_TEST_START"]):
        pytest.skip(f"{notebook} did not run in this test session")
    metrics = json.loads(path.read_text())["metrics"]
    assert arms_that_learned_nothing(metrics, ARMS[notebook]) == []
