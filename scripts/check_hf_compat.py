#!/usr/bin/env python3
"""Checks that Hugging Face transformers (and PEFT) reproduce the lab's output for an exported model.

Run where torch, transformers and peft are installed (not in the lab's Node environment):

    npm run export -- model  --checkpoint runs/R --out out/model            # full model (LoRA merged)
    npm run export -- model  --checkpoint runs/R --out out/adapter --adapter # PEFT adapter + out/adapter/base
    npm run export -- golden --checkpoint runs/R --out out/golden.json
    python scripts/check_hf_compat.py --model out/model --golden out/golden.json
    python scripts/check_hf_compat.py --model out/adapter/base --adapter out/adapter --golden out/golden.json

Loads the model with `from_pretrained` (Idefics3ForConditionalGeneration for Idefics3 configs, else
AutoModelForCausalLM) in float32, optionally the adapter with peft.PeftModel.from_pretrained, feeds the
golden file's input_ids and pixel_values ([1, 1, 3, H, W]), and compares the last-position logits
(max abs difference <= --atol) and the greedy continuation (token for token). Exit status 0 when both
agree, 1 otherwise; prints a JSON report.
"""
import argparse
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def load(model_dir: str, adapter_dir: str | None):
    config = AutoConfig.from_pretrained(model_dir)
    if "Idefics3ForConditionalGeneration" in (config.architectures or []):
        from transformers import Idefics3ForConditionalGeneration

        model = Idefics3ForConditionalGeneration.from_pretrained(model_dir, torch_dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    return model.eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="folder with config.json + model.safetensors")
    ap.add_argument("--adapter", help="folder with adapter_config.json + adapter_model.safetensors")
    ap.add_argument("--golden", required=True, help="JSON written by npm run export -- golden")
    ap.add_argument("--atol", type=float, default=1e-3, help="largest allowed |logit difference|")
    args = ap.parse_args()

    with open(args.golden) as f:
        golden = json.load(f)
    if golden.get("format") != "mmsearch-lab-golden/1":
        print(f"{args.golden}: not a golden file (format {golden.get('format')!r})", file=sys.stderr)
        return 2
    model = load(args.model, args.adapter)
    input_ids = torch.tensor([golden["input_ids"]], dtype=torch.long)
    pv = golden["pixel_values"]
    pixel_values = torch.tensor(pv["data"], dtype=torch.float32).reshape(pv["shape"])
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if golden["architecture"] == "Idefics3ForConditionalGeneration":
        inputs["pixel_values"] = pixel_values

    with torch.no_grad():
        logits = model(**inputs).logits[0, -1].float()
        want = torch.tensor(golden["logits_last"], dtype=torch.float32)
        diff = (logits - want).abs().max().item()
        g = golden["greedy"]
        out = model.generate(**inputs, max_new_tokens=g["max_new_tokens"], do_sample=False, eos_token_id=g["eos_token_id"], pad_token_id=g["eos_token_id"])
        tokens = out[0, input_ids.shape[1]:].tolist()
    lab = g["tokens"]
    # transformers pads after eos in a batch of one only when it stops early; compare up to the lab's length.
    same_tokens = tokens[: len(lab)] == lab
    report = {
        "model": args.model, "adapter": args.adapter, "golden": args.golden,
        "max_abs_logit_diff": diff, "atol": args.atol, "logits_ok": diff <= args.atol,
        "lab_greedy": lab, "hf_greedy": tokens, "greedy_ok": same_tokens,
        "argmax_lab": int(want.argmax()), "argmax_hf": int(logits.argmax()),
    }
    print(json.dumps(report, indent=1))
    return 0 if report["logits_ok"] and same_tokens else 1


if __name__ == "__main__":
    sys.exit(main())
