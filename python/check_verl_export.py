#!/usr/bin/env python3
"""Checks the parquet of `npm run export -- verl` against what MMSearch-R1's trainer reads.

    python python/check_verl_export.py --export DIR --sample mini_data.pq [--max-prompt-length 4096]

Reads every *.parquet in DIR with pyarrow and, for reference, the authors' sample (their
mmsearch_r1/data/mini_data.pq), and checks, file by file and row by row:
  - columns: every column of the sample exists with the same arrow type (a null-typed column of the
    sample, where their rows hold no value, accepts any type whose values are all null or strings);
  - prompt: one user message, the same struct fields as the sample, the bare question (no `<image>`);
    after MMSearch-R1's loader prepends its round-1 prompt (1,934 ASCII characters ending in
    "<image> ", mmsearch_r1/prompts/round_1_user_prompt_qwenvl.pkl at 583c6b4) there is exactly one
    `<image>` per image;
  - images: {bytes, path}, bytes that PIL decodes, path null;
  - reward_model: the sample's fields, candidate_answers a JSON list of strings, style "rule";
  - data_source: routed to the search reward by MMSearch-R1's _default_compute_score (names that
    contain "mmsearch_r1" or "imsearch"; utils/reward_score_mm/__init__.py at 583c6b4);
  - prompt length: an upper bound on Qwen2.5-VL's prompt tokens is at most --max-prompt-length. The
    bound: UTF-8 bytes of the chat-templated text (a byte-level BPE token covers at least one byte)
    plus, per image, the image tokens Qwen2.5-VL's image processor gives after the loader's resize
    (area into [512*512, 672*672*2], nearest) plus vision start/end.
The same checks run on the sample itself first, so a check that rejects the authors' data is a bug
here. Prints a JSON report; exit status 0 when every check passes, 1 otherwise.
"""
import argparse
import glob
import io
import json
import math
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

ROUND_1_PROMPT_CHARS = 1934  # len(round_1_user_prompt_qwenvl.pkl) at 583c6b4, ASCII, one "<image>", at its end
ROUND_1_TAIL = "<image> "
# Qwen2.5-VL chat template around one user message (default system turn), as text.
QWEN_TEMPLATE = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
# Qwen2.5-VL-7B-Instruct preprocessor_config.json: patch 14, merge 2, pixels in [3136, 12845056].
QWEN_IMAGE = dict(min_pixels=3136, max_pixels=12845056, patch_size=14, merge_size=2, temporal_patch_size=2)
LOADER_MIN_PIXELS, LOADER_MAX_PIXELS = 512 * 512, 672 * 672 * 2


def routed_to_search_reward(data_source: str) -> bool:
    """MMSearch-R1's routing rule for its search reward (names of other reward functions never contain these)."""
    return "imsearch" in data_source or "mmsearch_r1" in data_source


def loader_resize(img: Image.Image) -> Image.Image:
    """The area bounds MMSearch-R1's loader applies before Qwen's processor (its process_image), restated."""
    for limit, too in ((LOADER_MAX_PIXELS, lambda a: a > LOADER_MAX_PIXELS), (LOADER_MIN_PIXELS, lambda a: a < LOADER_MIN_PIXELS)):
        if too(img.width * img.height):
            f = math.sqrt(limit / (img.width * img.height))
            img = img.resize((int(img.width * f), int(img.height * f)), resample=Image.Resampling.NEAREST)
    return img.convert("RGB")


def image_tokens(processor, data: bytes) -> int:
    grid = processor(images=[loader_resize(Image.open(io.BytesIO(data)))], return_tensors="pt")["image_grid_thw"][0]
    return int(grid.prod().item()) // (QWEN_IMAGE["merge_size"] ** 2)


def same_type(ours: pa.DataType, theirs: pa.DataType) -> bool:
    if pa.types.is_null(theirs):
        return True
    if pa.types.is_struct(theirs):
        if not pa.types.is_struct(ours) or [f.name for f in ours] != [f.name for f in theirs]:
            return False
        return all(same_type(ours.field(f.name).type, f.type) for f in theirs)
    if pa.types.is_list(theirs):
        return pa.types.is_list(ours) and same_type(ours.value_type, theirs.value_type)
    return ours == theirs


def check_table(name: str, table: pa.Table, sample: pa.Table, processor, max_prompt_length: int) -> dict:
    problems: list[str] = []
    for field in sample.schema:
        if field.name not in table.column_names:
            problems.append(f"column {field.name} missing")
        elif not same_type(table.schema.field(field.name).type, field.type):
            problems.append(f"column {field.name}: {table.schema.field(field.name).type} vs the sample's {field.type}")
    prompt_keys = [f.name for f in sample.schema.field("prompt").type.value_type]
    reward_keys = [f.name for f in sample.schema.field("reward_model").type]
    longest = 0
    for i, row in enumerate(table.to_pylist()):
        where = f"row {i}"
        prompt, images = row["prompt"], row["images"] or []
        if len(prompt) != 1 or prompt[0].get("role") != "user" or sorted(prompt[0]) != sorted(prompt_keys):
            problems.append(f"{where}: prompt must be one user message with fields {prompt_keys}, got {prompt}")
            continue
        content = prompt[0]["content"]
        if "<image>" in content:
            problems.append(f"{where}: the message holds <image>; the loader's round-1 prompt already ends in one")
        merged = "x" * (ROUND_1_PROMPT_CHARS - len(ROUND_1_TAIL)) + ROUND_1_TAIL + content
        if merged.count("<image>") != len(images):
            problems.append(f"{where}: {merged.count('<image>')} <image> after the round-1 prompt for {len(images)} images")
        for j, im in enumerate(images):
            if sorted(im) != ["bytes", "path"] or im["path"] is not None:
                problems.append(f"{where} image {j}: fields {sorted(im)}, path {im.get('path')!r} (the sample: bytes, path null)")
            try:
                Image.open(io.BytesIO(im["bytes"])).verify()
            except Exception as e:  # noqa: BLE001 - any decoding failure is the finding
                problems.append(f"{where} image {j}: PIL cannot decode it ({e})")
        rm = row["reward_model"]
        if sorted(rm) != sorted(reward_keys) or rm["style"] != "rule" or not isinstance(rm["ground_truth"], str):
            problems.append(f"{where}: reward_model {rm}")
        else:
            cands = json.loads(rm["candidate_answers"])
            if not isinstance(cands, list) or not all(isinstance(c, str) for c in cands):
                problems.append(f"{where}: candidate_answers is not a JSON list of strings")
        if not routed_to_search_reward(row["data_source"]):
            problems.append(f"{where}: data_source {row['data_source']!r} is not routed to the search reward (NotImplementedError)")
        text = QWEN_TEMPLATE.format(merged)
        bound = len(text.encode("utf-8")) + sum(image_tokens(processor, im["bytes"]) + 2 for im in images)
        longest = max(longest, bound)
    if longest > max_prompt_length:
        problems.append(f"prompt token bound {longest} > max_prompt_length {max_prompt_length}")
    return {"file": name, "rows": table.num_rows, "data_sources": sorted(set(table.column("data_source").to_pylist())), "prompt_token_bound": longest, "problems": problems}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--export", required=True, help="folder written by npm run export -- verl")
    ap.add_argument("--sample", required=True, help="the authors' mini_data.pq")
    ap.add_argument("--max-prompt-length", type=int, default=4096)
    args = ap.parse_args()
    try:  # transformers >= 5: the PIL backend by name (the default one needs torchvision)
        from transformers import Qwen2VLImageProcessorPil as Processor
    except ImportError:
        from transformers import Qwen2VLImageProcessor as Processor

    processor = Processor(**QWEN_IMAGE)
    sample = pq.read_table(args.sample)
    files = sorted(glob.glob(os.path.join(args.export, "*.parquet")))
    if not files:
        print(f"{args.export}: no parquet files", file=sys.stderr)
        return 2
    reports = [check_table("sample:" + os.path.basename(args.sample), sample, sample, processor, args.max_prompt_length)]
    reports += [check_table(os.path.basename(f), pq.read_table(f), sample, processor, args.max_prompt_length) for f in files]
    ok = all(not r["problems"] for r in reports)
    print(json.dumps({"ok": ok, "files": reports}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
