"""MMSearch-R1's multi-turn search GRPO on TRL, as exported by MMSearch Lab (`npm run export -- trl`).

Pieces, each named after what it plugs into:
  - the conversation protocol (which action closes a turn, the search budget, the tool-result turn),
    rendered from protocol.json, which the lab writes from its own protocol code so both sides
    produce the same text and token ids;
  - `compute_score`: the MMSearch-R1 reward, (1 - a) * acc * P + a * format (the lab's
    src/rl/reward.ts, the authors' mmsearch_r1_score.py);
  - `SearchProxy`: the lab's search proxy over HTTP (POST /api/search/text, /api/search/image);
  - `make_rollout_func`: TRL's `rollout_func` hook (GRPOTrainer(rollout_func=...), TRL >= 1.x): turn by
    turn generation with the policy, searches run through the proxy, their result turns appended as
    tokens with `env_mask` 0 (TRL masks them out of the loss, as its tool_mask);
  - `mmsearch_reward`: a TRL reward function over the rollout's turns;
  - `load_fvqa_dataset`: the exported FVQA parquet as TRL conversational multimodal rows.
"""
from __future__ import annotations

import base64
import io
import json
import re
import string
import urllib.request
from dataclasses import dataclass, field

# ----------------------------------------------------------------------------------------------
# Protocol

IMAGE_SEARCH_AT_END = re.compile(r"<search>\s*<img>\s*</search>$")
CLOSING = re.compile(r"(</answer>|</search>|</text_search>)\s*$")
REASON_CLOSED = re.compile(r"</reason>\s*$")
# The RAG workflow's inserted actions by turn: (text, whether the policy then writes a query).
RAG_ACTIONS = {0: ("<search><img></search>", False), 1: ("<text_search>", True)}


def parse_tool_call(turn: str) -> dict:
    """The action that closes an assistant turn: {"kind": "image_search" | "text_search" | "answer" | "none", ...}.

    Only a tag that ends the (stripped) turn counts; an empty text query is "none" (the lab's
    src/protocol/tools.ts parseToolCall).
    """
    t = turn.strip()
    if IMAGE_SEARCH_AT_END.search(t):
        return {"kind": "image_search"}
    for tag in ("text_search", "answer"):
        close = f"</{tag}>"
        if not t.endswith(close):
            continue
        start = t.rfind(f"<{tag}>")
        if start < 0:
            return {"kind": "none"}
        inner = t[start + len(tag) + 2 : len(t) - len(close)].strip()
        if tag == "answer":
            return {"kind": "answer", "answer": inner}
        return {"kind": "text_search", "query": inner} if inner else {"kind": "none"}
    return {"kind": "none"}


@dataclass
class SearchBudget:
    """Searches of one trajectory: a search asked for in the last allowed turn, or beyond its limit, is not run."""

    max_turns: int = 3
    image_search: int = 1
    text_search: int = 2
    image_searches: int = 0
    text_searches: int = 0

    def decide(self, call: dict, turn_index: int) -> str:
        """"execute" (counting it) or "end"."""
        if call["kind"] not in ("image_search", "text_search") or turn_index >= self.max_turns - 1:
            return "end"
        if call["kind"] == "image_search":
            if self.image_searches >= self.image_search:
                return "end"
            self.image_searches += 1
        else:
            if self.text_searches >= self.text_search:
                return "end"
            self.text_searches += 1
        return "execute"


@dataclass
class Protocol:
    """The lab's protocol texts (protocol.json, written by the export from src/protocol/)."""

    image_turn: str  # tool-result turn after an image search: {results} and {question} placeholders
    text_turn: str
    image_results_header: str
    text_results_header: str
    no_image_results: str
    no_text_results: str
    tool_error: dict  # kind -> text with {message}
    question_marker: str
    first_turn: str  # the first user turn for rows that hold only the question: {question}
    user_turn: str  # the tokens' text of an inserted user turn: {content}
    user_turn_image_first: str
    image_placeholder: str = "<image>"

    @classmethod
    def load(cls, path: str) -> "Protocol":
        with open(path) as f:
            return cls(**json.load(f))

    def question_of(self, first_user_text: str) -> str:
        """The bare question of a first user turn (text after the question marker, images dropped)."""
        i = first_user_text.rfind(self.question_marker)
        tail = first_user_text[i + len(self.question_marker) :] if i >= 0 else first_user_text
        return tail.replace(self.image_placeholder, "").strip()

    def image_results(self, hits: list[dict], question: str) -> str:
        """Image-search result turn, titles only (thumbnails are not inserted as images in the TRL rollout)."""
        body = self.no_image_results if not hits else self.image_results_header + "\n" + "\n".join(f"{i + 1}. title: {h['title']}" for i, h in enumerate(hits))
        return self.image_turn.replace("{results}", body).replace("{question}", question)

    def text_results(self, hits: list[dict], question: str) -> str:
        body = self.no_text_results if not hits else self.text_results_header + "\n" + "\n".join(f"{i + 1}. ({h['url']}) {h['summary']}" for i, h in enumerate(hits))
        return self.text_turn.replace("{results}", body).replace("{question}", question)

    def error_turn(self, kind: str, message: str) -> str:
        return self.tool_error[kind].replace("{message}", message)

    def user_turn_text(self, content: str) -> str:
        """The text whose tokens are appended after an assistant turn: closes it, opens the user turn and the next assistant turn."""
        template = self.user_turn_image_first if content.startswith(self.image_placeholder) else self.user_turn
        return template.replace("{content}", content)


# ----------------------------------------------------------------------------------------------
# Reward

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lowercase, drop ASCII punctuation, articles a/an/the to spaces, collapse whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def _extract_answer(turn: str) -> str | None:
    found = re.findall(r"<answer>([\s\S]*?)</answer>", turn)
    return found[-1].strip() if found else None


_FORMAT_PATTERNS = [["answer"], ["image_search", "answer"], ["text_search", "answer"], ["image_search", "text_search", "answer"]]
_OPEN_TAG = {"answer": "<answer>", "image_search": "<search>", "text_search": "<text_search>"}


def _turn_action(turn: str) -> str | None:
    t = turn.strip()
    if not t.startswith("<reason>") or t.count("<reason>") != 1 or t.count("</reason>") != 1:
        return None
    call = parse_tool_call(t)
    if call["kind"] == "none":
        return None
    opens = sum(t.count(x) for x in ("<answer>", "<search>", "<text_search>"))
    closes = sum(t.count(x) for x in ("</answer>", "</search>", "</text_search>"))
    if opens != 1 or closes != 1:
        return None
    return call["kind"] if t.index("</reason>") < t.index(_OPEN_TAG[call["kind"]]) else None


def compute_score(turns: list[str], answers: list[str], format_penalty: float = 0.1, search_penalty: float = 0.1, reward_mode: str = "EM", use_search_count_penalty: bool = False) -> dict:
    """MMSearch-R1 reward of one trajectory's assistant turns against the golden answers.

    reward = (1 - a) * acc * P + a * format; acc: EM (or SubEM) of the last turn's last <answer>;
    format 1 when every turn is well formed and the actions follow [answer], [image, answer],
    [text, answer] or [image, text, answer]; P = 1 - search_penalty once any search ran (per search
    with use_search_count_penalty). Correct without search 1.0, with search 0.91, wrong but well formed 0.1.
    """
    turns = turns or [""]
    actions = [_turn_action(t) for t in turns]
    fmt = 1 if actions in _FORMAT_PATTERNS else 0
    answer = _extract_answer(turns[-1])
    golden = [normalize_answer(g) for g in answers]
    if answer is None:
        acc = 0
    elif reward_mode == "EM":
        acc = int(normalize_answer(answer) in golden)
    else:
        acc = int(any(g in normalize_answer(answer) for g in golden))
    kinds = [parse_tool_call(t)["kind"] for t in turns[:-1]]
    searches = sum(k in ("image_search", "text_search") for k in kinds)
    penalty = 1.0 if searches == 0 else (1 - search_penalty) ** (searches if use_search_count_penalty else 1)
    reward = (1 - format_penalty) * acc * penalty + format_penalty * fmt
    return {"reward": reward, "accuracy": acc, "format": fmt, "searches": searches, "image_searches": kinds.count("image_search"), "text_searches": kinds.count("text_search"), "answer": answer}


# ----------------------------------------------------------------------------------------------
# Search proxy


class SearchProxy:
    """The lab's search proxy (`npm run proxy`): text and image search over HTTP, JSON in and out."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _post(self, path: str, body: dict) -> list[dict]:
        req = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as res:
            return json.load(res)["results"]

    def text(self, query: str, k: int) -> list[dict]:
        """POST /api/search/text {query, k} -> [{title, url, summary}]."""
        return self._post("/api/search/text", {"query": query, "k": k})

    def image(self, png_or_jpeg: bytes, k: int) -> list[dict]:
        """POST /api/search/image {image_base64, k} -> [{title, url, thumbnail}]."""
        return self._post("/api/search/image", {"image_base64": base64.b64encode(png_or_jpeg).decode(), "k": k})


# ----------------------------------------------------------------------------------------------
# Data


def load_fvqa_dataset(path: str, protocol: Protocol):
    """FVQA parquet rows as TRL conversational multimodal rows.

    Each row: prompt = [{"role": "user", "content": [text / {"type": "image"} parts in place of each
    `<image>`]}], images = PIL images, answers = ground_truth + candidate_answers, data_id, category.
    A row whose message is the bare question (the hub's FVQA) gets the lab's first user turn around it.
    """
    image_placeholder = protocol.image_placeholder
    import datasets
    import pyarrow.parquet as pq
    from PIL import Image

    rows = []
    for r in pq.read_table(path).to_pylist():
        msg = r["prompt"][0]
        content = msg["content"] if image_placeholder in msg["content"] else protocol.first_turn.replace("{question}", msg["content"])
        parts: list[dict] = []
        for i, chunk in enumerate(content.split(image_placeholder)):
            if i > 0:
                parts.append({"type": "image", "text": None})
            if chunk:
                parts.append({"type": "text", "text": chunk})
        rm = r["reward_model"]
        rows.append({
            "prompt": [{"role": msg["role"], "content": parts}],
            "images": [Image.open(io.BytesIO(im["bytes"])).convert("RGB") for im in r["images"]],
            "answers": [rm["ground_truth"], *json.loads(rm["candidate_answers"] or "[]")],
            "data_id": r.get("data_id") or "",
            "category": r.get("category") or "",
        })
    return datasets.Dataset.from_list(rows)


# ----------------------------------------------------------------------------------------------
# Rollout


@dataclass
class RolloutSettings:
    """The lab recipe's rollout settings (trl_config.json "lab")."""

    max_turns: int = 3
    image_search_limit: int = 1
    text_search_limit: int = 2
    results_per_search: int = 5
    max_turn_tokens: int = 512
    max_completion_length: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    suppress_tokens: list = field(default_factory=list)
    # "on_demand" (the policy decides) or "rag" (the paper's RAG-workflow baseline: image search after
    # turn 1's reasoning, a text search opened after turn 2's, then the answer; inserted actions mask 0).
    mode: str = "on_demand"


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _first_user(prompt: list[dict]) -> tuple[str, list]:
    """The first user message as text with `<image>` placeholders, and its images."""
    text, images = "", []
    for part in prompt[0]["content"]:
        if part.get("type") == "image":
            text += "<image>"
            images.append(part.get("image"))
        else:
            text += part.get("text") or ""
    return text, images


def make_rollout_func(processor, protocol: Protocol, search: SearchProxy, settings: RolloutSettings):
    """TRL `rollout_func(prompts, trainer)` running MMSearch-R1's multi-turn search loop.

    For each prompt (one completion each; TRL's sampler already repeats a prompt num_generations
    times): encode the first user turn with the processor (the chat template, `<image>` expanded to
    the model's image tokens), then at most `max_turns` assistant turns, each sampled until an action
    tag closes it, the end-of-utterance token, `max_turn_tokens` or the completion budget; a search the
    budget allows runs through the proxy and its result turn is appended as tokens (env_mask 0,
    logprob 0). Returns prompt_ids, completion_ids, logprobs (of the sampled tokens), env_mask and, for
    the reward, `turns` (each assistant turn's text) and `searches`.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    tok = processor.tokenizer
    eou = tok.convert_tokens_to_ids("<end_of_utterance>")

    class TurnClosed(StoppingCriteria):
        """Stops when the turn's last tokens end with `pattern` (an action tag, or `</reason>` in the RAG workflow)."""

        def __init__(self, start: int, pattern: re.Pattern):
            self.start, self.pattern = start, pattern

        def __call__(self, input_ids, scores, **kwargs):
            tail = tok.decode(input_ids[0, self.start :][-4:].tolist())
            return torch.tensor([bool(self.pattern.search(tail))], device=input_ids.device)

    # Single-token protocol tags other than </text_search>, kept out of a query the RAG workflow opened (the lab's queryBlockedTags).
    tag_ids = [tok.convert_tokens_to_ids(t) for t in ("<reason>", "</reason>", "<answer>", "</answer>", "<search>", "</search>", "<img>", "<text_search>", "<information>", "</information>")]
    query_blocked = [i for i in tag_ids if i is not None and i != tok.unk_token_id]

    def sample(model, device, ids: list[int], pixel: dict, room: int, pattern: re.Pattern, suppress: list[int]) -> tuple[list[int], list[float]]:
        x = torch.tensor([ids], device=device)
        with torch.no_grad():
            gen = model.generate(
                input_ids=x, attention_mask=torch.ones_like(x), **pixel,
                max_new_tokens=room, do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k or None,
                eos_token_id=eou, pad_token_id=eou, suppress_tokens=suppress or None,
                stopping_criteria=StoppingCriteriaList([TurnClosed(x.shape[1], pattern)]), output_scores=True, return_dict_in_generate=True,
            )
        new = gen.sequences[0, x.shape[1] :].tolist()
        return new, [torch.log_softmax(s[0].float(), -1)[t].item() for s, t in zip(gen.scores, new)]

    def rollout_func(prompts: list, trainer) -> dict[str, list]:
        model = trainer.accelerator.unwrap_model(trainer.model)
        device = trainer.accelerator.device
        # Sampling in eval mode keeps the KV cache on (transformers turns it off under gradient checkpointing in training mode).
        was_training = model.training
        model.eval()
        try:
            return _rollouts(model, device, prompts)
        finally:
            model.train(was_training)

    def _rollouts(model, device, prompts: list) -> dict[str, list]:
        out = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_mask": [], "turns": [], "searches": []}
        for prompt in prompts:
            text, images = _first_user(prompt)
            chat = tok.apply_chat_template([{"role": "user", "content": [{"type": "image"} if p.get("type") == "image" else {"type": "text", "text": p["text"]} for p in prompt[0]["content"]]}], add_generation_prompt=True, tokenize=False)
            enc = processor(text=chat, images=[images] if images else None, return_tensors="pt", add_special_tokens=False)
            prompt_ids = enc["input_ids"][0].tolist()
            pixel = {k: v.to(device) for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
            question = protocol.question_of(text)
            budget = SearchBudget(settings.max_turns, settings.image_search_limit, settings.text_search_limit)
            completion: list[int] = []
            logprobs: list[float] = []
            mask: list[int] = []
            turns: list[str] = []

            def add(ids: list[int], lps: list[float] | None) -> None:
                completion.extend(ids)
                logprobs.extend(lps if lps is not None else [0.0] * len(ids))
                mask.extend([1 if lps is not None else 0] * len(ids))

            for turn_index in range(settings.max_turns):
                room = min(settings.max_turn_tokens, settings.max_completion_length - len(completion))
                if room <= 0:
                    break
                forced = RAG_ACTIONS.get(turn_index) if settings.mode == "rag" else None
                new, lps = sample(model, device, prompt_ids + completion, pixel, room, REASON_CLOSED if forced else CLOSING, settings.suppress_tokens)
                add(new, lps)
                if forced and eou not in new:
                    # The RAG workflow (the paper's baseline): after the policy's reasoning, the action is inserted (mask 0).
                    reasoning = tok.decode(new)
                    insert = tok((forced[0] if REASON_CLOSED.search(reasoning) else "</reason>" + forced[0]), add_special_tokens=False)["input_ids"]
                    if len(completion) + len(insert) + 1 < settings.max_completion_length:
                        add(insert, None)
                        new = new + insert
                        if forced[1]:  # the policy writes the text query, other tags kept out of it
                            q, qlps = sample(model, device, prompt_ids + completion, pixel, max(1, room - len(new)), CLOSING, settings.suppress_tokens + query_blocked)
                            add(q, qlps)
                            new = new + q
                turn_text = tok.decode([t for t in new if t != eou]).lstrip(" ")
                turns.append(turn_text)
                call = parse_tool_call(turn_text)
                if eou in new or not CLOSING.search(turn_text) or budget.decide(call, turn_index) != "execute":
                    break
                try:
                    if call["kind"] == "image_search":
                        result = protocol.image_results(search.image(_png(images[0]), settings.results_per_search), question)
                    else:
                        result = protocol.text_results(search.text(call["query"], settings.results_per_search), question)
                except Exception as e:  # noqa: BLE001 - a failed search becomes an error turn, as in the lab
                    result = protocol.error_turn(call["kind"], str(e))
                inserted = tok(protocol.user_turn_text(result), add_special_tokens=False)["input_ids"]
                if len(completion) + len(inserted) + 1 > settings.max_completion_length:
                    break
                add(inserted, None)
            out["prompt_ids"].append(prompt_ids)
            out["completion_ids"].append(completion)
            out["logprobs"].append(logprobs)
            out["env_mask"].append(mask)
            out["turns"].append(turns)
            out["searches"].append(budget.image_searches + budget.text_searches)
        return out

    return rollout_func


def mmsearch_reward(format_penalty: float = 0.1, search_penalty: float = 0.1, reward_mode: str = "EM", use_search_count_penalty: bool = False):
    """A TRL reward function: MMSearch-R1's reward of each rollout's turns against the row's answers.

    Also logs rewards/accuracy/mean, rewards/format/mean and search_ratio through TRL's log_metric.
    """

    def mmsearch_r1(prompts, completions, turns, answers, log_metric=None, **kwargs) -> list[float]:
        scores = [compute_score(t, a, format_penalty, search_penalty, reward_mode, use_search_count_penalty) for t, a in zip(turns, answers)]
        if log_metric is not None and scores:
            n = len(scores)
            log_metric("rewards/accuracy/mean", sum(s["accuracy"] for s in scores) / n)
            log_metric("rewards/format/mean", sum(s["format"] for s in scores) / n)
            log_metric("search_ratio", sum(s["searches"] > 0 for s in scores) / n)
        return [s["reward"] for s in scores]

    return mmsearch_r1

