#!/usr/bin/env python3
"""TRL's GRPO loss on a fixed batch of the lab's rollouts, for each loss_type, against the lab's values.

    python python/check_trl_loss.py --model MODEL_DIR --batch BATCH.json

BATCH.json (written by src/export/trl.test.ts): one group of the lab's rollouts of one prompt in TRL's
layout (prompt_ids [B, P], completion_ids [B, C] right-padded, completion_mask, tool_mask), pixel_values
[B, 1, 3, H, W], advantages [B], old / ref per-token log-probs [B, C], num_items_in_batch, the GRPO
settings (temperature, epsilon, epsilon_high, beta, max_completion_length, use_bias_correction_kl:
TRL 1.13 defaults it to True, weighting the KL term by the importance ratio; the lab does not) and
the lab's per-token log-probs and loss for each loss_type. For each loss_type this builds a real trl.GRPOTrainer (GRPOConfig with
those settings) around the exported model loaded in float64 (so the comparison is about the loss, not
float32 rounding) and calls its `_compute_loss` on the batch in eval mode (one micro-batch, no
gradient accumulation: the lab's setting in the batch). Prints JSON; exit 0 when every loss is
within --atol of the lab's.
"""
import argparse
import json
import os
import sys
import tempfile

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--atol", type=float, default=1e-5)
    args = ap.parse_args()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

    import datasets
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    with open(args.batch) as f:
        b = json.load(f)
    f64 = torch.float64
    prompt_ids = torch.tensor(b["prompt_ids"])
    completion_ids = torch.tensor(b["completion_ids"])
    inputs = {
        "prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids),
        "completion_ids": completion_ids, "completion_mask": torch.tensor(b["completion_mask"]),
        "tool_mask": torch.tensor(b["tool_mask"]),
        "advantages": torch.tensor(b["advantages"], dtype=f64),
        "old_per_token_logps": torch.tensor(b["old_per_token_logps"], dtype=f64),
        "ref_per_token_logps": torch.tensor(b["ref_per_token_logps"], dtype=f64),
        "pixel_values": torch.tensor(b["pixel_values"]["data"], dtype=f64).reshape(b["pixel_values"]["shape"]),
        "num_items_in_batch": torch.tensor(float(b["num_items_in_batch"]), dtype=f64),
        "num_images": [1] * len(b["prompt_ids"]),
    }
    processor = AutoProcessor.from_pretrained(args.model)
    model = AutoModelForImageTextToText.from_pretrained(args.model, dtype=f64).eval()
    B = prompt_ids.shape[0]
    data = datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": "x"}]}] * B)
    report = {"losses": {}, "atol": args.atol}
    ok = True
    with tempfile.TemporaryDirectory() as out:
        for loss_type, lab_loss in b["lab_loss"].items():
            config = GRPOConfig(
                output_dir=out, report_to="none", use_cpu=True, loss_type=loss_type, beta=b["beta"], epsilon=b["epsilon"], epsilon_high=b["epsilon_high"],
                temperature=b["temperature"], max_completion_length=b["max_completion_length"], num_generations=B, per_device_train_batch_size=B,
                gradient_accumulation_steps=1, disable_dropout=True, use_bias_correction_kl=b["use_bias_correction_kl"],
            )
            trainer = GRPOTrainer(model=model, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=config, train_dataset=data, processing_class=processor)
            trainer.model.eval()
            with torch.no_grad():
                loss = trainer._compute_loss(trainer.model, dict(inputs)).item()
                logps, _, _ = trainer._get_per_token_logps_and_entropies(
                    trainer.model, torch.cat([prompt_ids, completion_ids], 1), torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1),
                    completion_ids.shape[1], pixel_values=inputs["pixel_values"], num_images=inputs["num_images"],
                )
            mask = inputs["completion_mask"].bool()
            lp_diff = (logps - torch.tensor(b["lab_per_token_logps"], dtype=f64))[mask].abs().max().item()
            diff = abs(loss - lab_loss)
            report["losses"][loss_type] = {"trl": loss, "lab": lab_loss, "abs_diff": diff, "per_token_logps_max_abs_diff": lp_diff}
            ok = ok and diff <= args.atol
    report["ok"] = ok
    print(json.dumps(report, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
