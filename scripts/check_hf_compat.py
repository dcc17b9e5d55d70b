#!/usr/bin/env python3
"""Checks that Hugging Face transformers (and PEFT) reproduce the lab's output for an exported model.

    npm run export -- model  --checkpoint RUN --out out/model                # full model (LoRA merged)
    npm run export -- model  --checkpoint RUN --out out/adapter --adapter    # PEFT adapter + out/adapter/base
    npm run export -- golden --checkpoint RUN --out out/golden.json
    python scripts/check_hf_compat.py --model out/model --golden out/golden.json
    python scripts/check_hf_compat.py --model out/adapter/base --adapter out/adapter --golden out/golden.json

RUN may also be a model folder (e.g. a fixture of scripts/make-fixtures.ts). The virtual environment
that `npm test` builds (.cache/python-venv, python/requirements.txt) has everything this needs.

Checks, each reported in the JSON it prints:
  - logits: the model loaded with from_pretrained in float32 (AutoModelForImageTextToText for
    Idefics3, else AutoModelForCausalLM; with --adapter through peft.PeftModel and, separately,
    peft's auto class from the adapter folder alone) gives the golden file's last-position logits
    within --atol and the same greedy tokens;
  - tokenizer (when the export has one): AutoTokenizer.apply_chat_template on the golden messages
    gives the lab's chat text, and tokenising the lab's prompt gives its ids;
  - processor (Idefics3 with a tokenizer): AutoProcessor on the golden's chat text and image gives
    the lab's input_ids exactly and its pixel_values within --pixel-atol.
Exit status 0 when every check passes, 1 otherwise.
"""
import argparse
import base64
import io
import json
import os
import sys

import torch


def auto_class(architecture: str):
    import transformers

    return transformers.AutoModelForImageTextToText if architecture == "Idefics3ForConditionalGeneration" else transformers.AutoModelForCausalLM


def compare(model, golden: dict, inputs: dict) -> dict:
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1].float()
        want = torch.tensor(golden["logits_last"], dtype=torch.float32)
        g = golden["greedy"]
        out = model.generate(**inputs, max_new_tokens=g["max_new_tokens"], do_sample=False, eos_token_id=g["eos_token_id"], pad_token_id=g["eos_token_id"])
    tokens = out[0, inputs["input_ids"].shape[1]:].tolist()
    return {"max_abs_logit_diff": (logits - want).abs().max().item(), "argmax_lab": int(want.argmax()), "argmax_hf": int(logits.argmax()),
            "lab_greedy": g["tokens"], "hf_greedy": tokens[: len(g["tokens"])], "greedy_ok": tokens[: len(g["tokens"])] == g["tokens"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="folder with config.json + model.safetensors")
    ap.add_argument("--adapter", help="folder with adapter_config.json + adapter_model.safetensors")
    ap.add_argument("--golden", help="JSON written by npm run export -- golden")
    ap.add_argument("--jobs", help="JSON list of {model, adapter?, golden}: several checks in one process (one torch import)")
    ap.add_argument("--atol", type=float, default=1e-4, help="largest allowed |logit difference|")
    ap.add_argument("--pixel-atol", type=float, default=1e-6, help="largest allowed |pixel_values difference|")
    args = ap.parse_args()
    if args.jobs:
        with open(args.jobs) as f:
            jobs = json.load(f)
    elif args.model and args.golden:
        jobs = [{"model": args.model, "adapter": args.adapter, "golden": args.golden}]
    else:
        ap.error("--model and --golden (or --jobs) are required")
    reports = [check(argparse.Namespace(**{"adapter": None, **job}, atol=args.atol, pixel_atol=args.pixel_atol)) for job in jobs]
    print(json.dumps(reports[0] if not args.jobs else reports, indent=1))
    return 0 if all(r["ok"] for r in reports) else 1


def check(args) -> dict:
    with open(args.golden) as f:
        golden = json.load(f)
    if golden.get("format") != "mmsearch-lab-golden/1":
        return {"golden": args.golden, "ok": False, "error": f"not a golden file (format {golden.get('format')!r})"}
    arch = golden["architecture"]
    vlm = arch == "Idefics3ForConditionalGeneration"
    input_ids = torch.tensor([golden["input_ids"]], dtype=torch.long)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if vlm:
        pv = golden["pixel_values"]
        inputs["pixel_values"] = torch.tensor(pv["data"], dtype=torch.float32).reshape(pv["shape"])

    report: dict = {"model": args.model, "adapter": args.adapter, "golden": args.golden, "architecture": arch, "atol": args.atol, "checks": {}}
    checks = report["checks"]
    cls = auto_class(arch)
    model = cls.from_pretrained(args.model, dtype=torch.float32)
    report["loaded_class"] = type(model).__name__
    if args.adapter:
        from peft import PeftModel

        checks["peft_model"] = compare(PeftModel.from_pretrained(model, args.adapter).eval(), golden, inputs)
        # The adapter folder alone: peft's auto class reads base_model_name_or_path (and auto_mapping).
        import peft

        with open(os.path.join(args.adapter, "adapter_config.json")) as f:
            task = json.load(f).get("task_type")
        auto = peft.AutoPeftModelForCausalLM if task == "CAUSAL_LM" else peft.AutoPeftModel
        auto_model = auto.from_pretrained(args.adapter, dtype=torch.float32).eval()
        checks["peft_auto"] = {"class": auto.__name__, **compare(auto_model, golden, inputs)}
    else:
        checks["from_pretrained"] = compare(model.eval(), golden, inputs)

    tok_dir = args.adapter or args.model
    if golden.get("chat_text") is not None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tok_dir)
        text = tok.apply_chat_template(golden["messages"], add_generation_prompt=True, tokenize=False)
        ids = tok(golden["prompt"], add_special_tokens=False)["input_ids"]
        checks["tokenizer"] = {"class": type(tok).__name__, "chat_template_ok": text == golden["chat_text"], "ids_ok": ids == golden["input_ids"],
                               **({} if text == golden["chat_text"] else {"hf_chat_text": text, "lab_chat_text": golden["chat_text"]})}
        if vlm:
            from PIL import Image
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(tok_dir)
            image = Image.open(io.BytesIO(base64.b64decode(golden["image_base64"])))
            got = processor(text=golden["chat_text"], images=[[image]], return_tensors="pt", add_special_tokens=False)
            pv = inputs["pixel_values"]
            shape_ok = list(got["pixel_values"].shape) == list(pv.shape)
            checks["processor"] = {"class": type(processor).__name__, "ids_ok": got["input_ids"][0].tolist() == golden["input_ids"], "pixel_shape_ok": shape_ok,
                                   "max_abs_pixel_diff": (got["pixel_values"].float() - pv).abs().max().item() if shape_ok else None, "pixel_atol": args.pixel_atol}

    ok = True
    for name, c in checks.items():
        if "max_abs_logit_diff" in c:
            c["ok"] = c["max_abs_logit_diff"] <= args.atol and c["greedy_ok"]
        elif name == "tokenizer":
            c["ok"] = c["chat_template_ok"] and c["ids_ok"]
        elif name == "processor":
            c["ok"] = c["ids_ok"] and c["pixel_shape_ok"] and c["max_abs_pixel_diff"] <= args.pixel_atol
        ok = ok and c["ok"]
    report["ok"] = ok
    return report


if __name__ == "__main__":
    sys.exit(main())
