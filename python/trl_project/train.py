#!/usr/bin/env python3
"""GRPO with MMSearch-R1's multi-turn search on TRL, for a lab recipe exported by `npm run export -- trl`.

    python train.py [--output-dir out] [--max-steps N] [--proxy-url URL]        # one process (CPU or one GPU)
    accelerate launch train.py [...]                                            # many GPUs (accelerate config)

Reads, next to this file: trl_config.json (GRPOConfig fields, the lab's rollout and reward settings,
LoRA), protocol.json (the lab's turn texts), data/train.parquet, and the model in model/ (or the hub
id in trl_config.json). The search proxy (`npm run proxy` in the lab) must be reachable at
--proxy-url (default: the recipe's). Writes the trained model (or LoRA adapter) and its processor to
--output-dir; `npm run export -- model` equivalents: load it back into the lab with the Storage
view's import or loadPretrained.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from mmsearch_trl import Protocol, RolloutSettings, SearchProxy, load_fvqa_dataset, make_rollout_func, mmsearch_reward  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--output-dir", default=os.path.join(HERE, "out"))
    ap.add_argument("--max-steps", type=int, help="override GRPOConfig.max_steps")
    ap.add_argument("--proxy-url", help="the lab's search proxy (default: trl_config.json lab.proxy_url)")
    ap.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is visible")
    ap.add_argument("--rollout-mode", choices=["on_demand", "rag"], default="on_demand", help="on_demand: the policy decides when to search (MMSearch-R1); rag: the paper's RAG-workflow baseline (always image search, then text search)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="override a GRPOConfig field, e.g. --set per_device_train_batch_size=4")
    args = ap.parse_args()

    with open(os.path.join(HERE, "trl_config.json")) as f:
        cfg = json.load(f)
    lab = cfg["lab"]
    grpo = dict(cfg["grpo"])
    if args.max_steps is not None:
        grpo["max_steps"] = args.max_steps
    for item in args.set:
        key, _, value = item.partition("=")
        grpo[key] = json.loads(value)
    grpo.update(output_dir=args.output_dir, report_to="none", remove_unused_columns=False, use_cpu=args.cpu or not torch.cuda.is_available())
    config = GRPOConfig(**grpo)

    # "model" (the exported folder next to this file) or a hub id.
    local = os.path.join(HERE, lab["model"])
    model_path = local if os.path.isdir(local) else lab["model"]
    processor = AutoProcessor.from_pretrained(model_path)
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32)

    peft_config = None
    if cfg.get("lora"):
        from peft import LoraConfig

        lora = cfg["lora"]
        peft_config = LoraConfig(r=lora["r"], lora_alpha=lora["lora_alpha"], lora_dropout=lora["lora_dropout"], target_modules=lora["target_modules"])

    protocol = Protocol.load(os.path.join(HERE, "protocol.json"))
    tok = processor.tokenizer
    suppress = [tok.convert_tokens_to_ids(t) for t in lab["suppress_tokens"]]
    settings = RolloutSettings(
        max_turns=lab["max_turns"], image_search_limit=lab["image_search_limit"], text_search_limit=lab["text_search_limit"],
        results_per_search=lab["results_per_search"], max_turn_tokens=lab["max_turn_tokens"], max_completion_length=grpo["max_completion_length"],
        temperature=grpo["temperature"], top_p=grpo["top_p"], top_k=grpo["top_k"], suppress_tokens=suppress, mode=args.rollout_mode,
    )
    search = SearchProxy(args.proxy_url or lab["proxy_url"])
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[mmsearch_reward(**lab["reward"])],
        args=config,
        train_dataset=load_fvqa_dataset(os.path.join(HERE, "data/train.parquet"), protocol),
        processing_class=processor,
        rollout_func=make_rollout_func(processor, protocol, search, settings),
        peft_config=peft_config,
    )
    trainer.train()
    trainer.save_model(args.output_dir)
    processor.save_pretrained(args.output_dir)
    if trainer.accelerator.is_main_process:
        with open(os.path.join(args.output_dir, "log_history.json"), "w") as f:
            json.dump(trainer.state.log_history, f, indent=1)
        with open(os.path.join(args.output_dir, "run_info.json"), "w") as f:
            json.dump({"num_processes": trainer.accelerator.num_processes, "global_step": trainer.state.global_step}, f)
    # Tear the process group down before the interpreter exits: left to exit, a gloo worker thread can abort
    # one rank ("terminate called without an active exception") after training has finished.
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return 0


if __name__ == "__main__":
    sys.exit(main())
