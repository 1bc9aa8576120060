"""Makes the tiny sentence-transformers models of Tests/Fixtures/st-models and their golden
vectors (see README.md). Run through generate.sh, which makes the virtualenv.

Every number written comes from sentence-transformers itself (encode_query, encode_document,
encode) on the saved and reloaded model folder, so the fixtures say what sentence-transformers
does with each configuration, not what this script thinks it does.
"""

import json
import os
import random
import shutil
import sys

import numpy as np
import sentence_transformers
import tokenizers
import torch
import transformers
from sentence_transformers import SentenceTransformer, models
from transformers import BertConfig, BertModel, BertTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_SEQ_LENGTH = 32

# Ten texts: short and long, punctuation, accents (stripped by the uncased tokenizer), digits,
# a character outside the vocabulary ([UNK]), an empty text, and one far longer than
# MAX_SEQ_LENGTH so that prompt + text is truncated.
TEXTS = [
    "how do i renew my passport?",
    "Travel documents: renew a passport at the town hall.",
    "The committee met on 4 May and approved the budget.",
    "Café crème, déjà vu, naïve résumé.",
    "def read_config(path): return json.load(open(path))",
    "what is the capital of france",
    "Paris is the capital and largest city of France.",
    "snow ☃ falls",
    "",
    "A very long passage about the rain in the city: the committee recorded the rain every day, "
    "and the rain was above the average in March, April and May, so the city approved a new budget "
    "for the drains, the roads and the parks, and the town hall published the documents online.",
]

# name -> (pooling mode, include_prompt, Normalize module, prompts, default_prompt_name)
# Models named in LEGACY are rewritten to the files older sentence-transformers versions write
# (and the hub's bge, e5, arctic-embed models have); the others keep the files 5.7 writes.
CONFIGS = {
    # bge-small-en-v1.5 / snowflake-arctic-embed style: CLS, a query prompt, empty document prompt.
    "cls-query-prompt": ("cls", True, True,
                         {"query": "Represent this sentence for searching relevant passages: ", "document": ""}, None),
    # e5-small-v2 style: mean pooling, "query: " and "passage: ".
    "mean-e5-prompts": ("mean", True, True, {"query": "query: ", "passage": "passage: "}, None),
    # max pooling with prompts.
    "max-prompts": ("max", True, True, {"query": "query: ", "document": "document: "}, None),
    # no Normalize module, no prompts: plain mean pooling.
    "mean-unnormalized": ("mean", True, False, {}, None),
    # include_prompt false: mean pooling leaves [CLS] and the prompt's tokens out.
    "mean-exclude-prompt": ("mean", False, True, {"query": "query: ", "document": "passage: "}, None),
    # include_prompt false with max pooling, no Normalize; the document prompt ends inside a
    # word, so it joins the text's first word.
    "max-exclude-prompt": ("max", False, False, {"query": "search_query: ", "document": "passage"}, None),
    # CLS with include_prompt false: pools the first token after the prompt; a default prompt
    # that encode_query and encode_document do not use.
    "cls-default-prompt": ("cls", False, False, {"query": "Represent: ", "retrieval": "unused: "}, "retrieval"),
}

LEGACY = {"cls-query-prompt", "mean-e5-prompts", "max-exclude-prompt", "mean-unnormalized"}

# Prompt configurations (config_sentence_transformers.json contents) whose resolution per role
# sentence-transformers reports through prompt_cases.json.
PROMPT_CASES = [
    {"prompts": {"query": "q: ", "document": "d: "}, "default_prompt_name": None},
    {"prompts": {"query": "q: ", "passage": "p: ", "corpus": "c: "}, "default_prompt_name": None},
    {"prompts": {"corpus": "c: "}, "default_prompt_name": None},
    {"prompts": {"document": "d: ", "passage": "p: "}, "default_prompt_name": None},
    {"prompts": {"query": "", "document": "", "x": "X: "}, "default_prompt_name": "x"},
    {"prompts": {"x": "X: ", "query": "q: "}, "default_prompt_name": "x"},
    {"prompts": {"passage": "p: ", "x": "X: "}, "default_prompt_name": "x"},
    {"prompts": {"x": "X: "}, "default_prompt_name": None},
    {"prompts": {"x": "X: "}, "default_prompt_name": "x"},
    {"prompts": {"query": None, "document": "d: "}, "default_prompt_name": None},
    {"prompts": {}, "default_prompt_name": None},
]


def basic_words(text):
    """Lower-cased, accent-stripped words and punctuation, as BERT's pre-tokenizer splits them."""
    import unicodedata
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out, word = [], ""
    for c in text:
        if c.isspace():
            if word: out.append(word); word = ""
        elif unicodedata.category(c).startswith("P") or c in "$+<=>^`|~":
            if word: out.append(word); word = ""
            out.append(c)
        else:
            word += c
    if word: out.append(word)
    return out


def make_vocab():
    """A few hundred entries: the specials, every ASCII letter and digit alone and as a
    continuation (so any ASCII word tokenizes), punctuation, and the test texts' and prompts'
    words (whole, or split in two for some, so that ## pieces are exercised)."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    punct = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    vocab += punct + chars + ["##" + c for c in chars]
    words = set()
    for t in TEXTS:
        words.update(basic_words(t))
    for cfg in CONFIGS.values():
        for p in cfg[3].values():
            words.update(basic_words(p))
    words = sorted(w for w in words if len(w) > 1 and w.isalnum() and w.isascii())
    rng = random.Random(7)
    for w in words:
        if rng.random() < 0.3 and len(w) > 4:
            vocab += [w[:3], "##" + w[3:]]  # split: exercises continuation pieces
        else:
            vocab.append(w)
    seen, out = set(), []
    for v in vocab:
        if v not in seen:
            seen.add(v); out.append(v)
    return out


def make_model(name, pooling, include_prompt, normalize, prompts, default_prompt_name, seed):
    out = os.path.join(HERE, name)
    shutil.rmtree(out, ignore_errors=True)
    work = os.path.join(HERE, ".work", name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    vocab = make_vocab()
    with open(os.path.join(work, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=os.path.join(work, "vocab.txt"), do_lower_case=True,
                            model_max_length=MAX_SEQ_LENGTH)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                        initializer_range=0.3, hidden_act="gelu")
    bert = BertModel(config, add_pooling_layer=False)
    with torch.no_grad():
        # Random LayerNorm parameters too, so that no part of the arithmetic is an identity.
        for n, p in bert.named_parameters():
            if "LayerNorm.weight" in n:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif "LayerNorm.bias" in n or n.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
    bert.save_pretrained(work, safe_serialization=True)
    tok.save_pretrained(work)

    transformer = models.Transformer(work, max_seq_length=MAX_SEQ_LENGTH)
    pool = models.Pooling(32, pooling_mode=pooling, include_prompt=include_prompt)
    modules = [transformer, pool] + ([models.Normalize()] if normalize else [])
    st = SentenceTransformer(modules=modules, device="cpu", prompts=prompts, default_prompt_name=default_prompt_name)
    st.save(out, safe_serialization=True)
    if name in LEGACY:
        write_legacy(out, pooling, include_prompt, prompts, default_prompt_name)
    for extra in ["README.md"]:
        p = os.path.join(out, extra)
        if os.path.exists(p):
            os.remove(p)
    shutil.rmtree(work)
    return out


def write_legacy(out, pooling, include_prompt, prompts, default_prompt_name):
    """Rewrites modules.json, sentence_bert_config.json and 1_Pooling/config.json as
    sentence-transformers < 5.4 wrote them (module types under sentence_transformers.models,
    max_seq_length in sentence_bert_config.json, one pooling_mode_* flag per mode), with the
    tokenizer's model_max_length at 512 as on the hub: max_seq_length must win."""
    def rewrite(path, change):
        path = os.path.join(out, path)
        with open(path) as f:
            obj = json.load(f)
        obj = change(obj)
        with open(path, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")

    def modules(ms):
        for m in ms:
            m["type"] = "sentence_transformers.models." + m["type"].rsplit(".", 1)[-1]
        return ms

    rewrite("modules.json", modules)
    rewrite("sentence_bert_config.json", lambda _: {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    flags = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens", "max": "pooling_mode_max_tokens"}
    legacy = {"word_embedding_dimension": 32}
    for mode in ["cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens", "lasttoken"]:
        legacy["pooling_mode_" + mode] = flags[pooling] == "pooling_mode_" + mode
    legacy["include_prompt"] = include_prompt
    rewrite("1_Pooling/config.json", lambda _: legacy)

    def tokenizer_config(c):
        c["model_max_length"] = 512
        return c

    rewrite("tokenizer_config.json", tokenizer_config)
    # The prompts exactly as given (5.7 also writes its empty "query" and "document" defaults).
    rewrite("config_sentence_transformers.json", lambda c: {
        "__version__": {"sentence_transformers": "3.0.1"}, "prompts": prompts, "default_prompt_name": default_prompt_name})


def record_preprocess(model):
    """Wraps model.preprocess (what encode calls on each batch, with the resolved prompt) to
    record its inputs, prompt and output features (input_ids, prompt_length)."""
    seen = []
    original = model.preprocess

    def preprocess(inputs, *args, **kwargs):
        out = original(inputs, *args, **kwargs)
        seen.append((list(inputs), kwargs.get("prompt"), out))
        return out

    model.preprocess = preprocess
    return seen


def golden(folder):
    model = SentenceTransformer(folder, device="cpu")
    model.eval()
    seen = record_preprocess(model)
    roles = {}
    for role in ["query", "document", "plain"]:
        vectors, ids, prompts, lengths = [], [], set(), set()
        for text in TEXTS:
            seen.clear()
            if role == "query":
                v = model.encode_query([text], batch_size=1, convert_to_numpy=True)
            elif role == "document":
                v = model.encode_document([text], batch_size=1, convert_to_numpy=True)
            else:
                # kbindex's "plain" role adds no prompt at all, whatever default_prompt_name says.
                v = model.encode([text], batch_size=1, convert_to_numpy=True, prompt="")
            inputs, prompt, features = [s for s in seen if s[0] == [text]][-1]
            prompts.add(prompt or "")
            lengths.add(int(features["prompt_length"]) if "prompt_length" in features else 0)
            ids.append(features["input_ids"][0].tolist())
            vectors.append([float(x) for x in v[0].astype(np.float32)])
        assert len(prompts) == 1 and len(lengths) == 1, (prompts, lengths)
        prompt, plen = prompts.pop(), lengths.pop()
        # The same texts in one padded batch: sentence-transformers agrees with itself.
        if role == "query":
            batch = model.encode_query(TEXTS, convert_to_numpy=True)
        elif role == "document":
            batch = model.encode_document(TEXTS, convert_to_numpy=True)
        else:
            batch = model.encode(TEXTS, convert_to_numpy=True, prompt="")
        assert np.abs(batch - np.array(vectors, dtype=np.float32)).max() < 1e-5
        roles[role] = {"prompt": prompt, "prompt_length": plen, "ids": ids, "embeddings": vectors}
    return roles


def prompt_cases():
    """Which prompt encode_query and encode_document prepend for each PROMPT_CASES entry,
    written as a model folder's config_sentence_transformers.json."""
    folder = os.path.join(HERE, "mean-unnormalized")
    work = os.path.join(HERE, ".work", "prompt-case")
    out = []
    for case in PROMPT_CASES:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(folder, work)
        with open(os.path.join(work, "config_sentence_transformers.json"), "w") as f:
            json.dump(case, f)
        model = SentenceTransformer(work, device="cpu")
        seen = record_preprocess(model)
        resolved = {}
        for role in ["query", "document"]:
            seen.clear()
            (model.encode_query if role == "query" else model.encode_document)(["TEXT"])
            prompt = [s[1] for s in seen if s[0] == ["TEXT"]][-1]
            resolved[role] = prompt or None
        out.append({"config": case, "query": resolved["query"], "document": resolved["document"]})
    shutil.rmtree(work, ignore_errors=True)
    return out


def main():
    versions = {"sentence-transformers": sentence_transformers.__version__, "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__, "torch": torch.__version__, "numpy": np.__version__,
                "python": sys.version.split()[0]}
    for i, (name, cfg) in enumerate(CONFIGS.items()):
        folder = make_model(name, *cfg, seed=100 + i)
        data = {"model": name, "files": "legacy" if name in LEGACY else "5.7", "versions": versions,
                "max_seq_length": MAX_SEQ_LENGTH, "texts": TEXTS,
                "roles": golden(folder)}
        with open(os.path.join(HERE, name + ".golden.json"), "w") as f:
            json.dump(data, f, ensure_ascii=False, indent=None, separators=(",", ":"))
            f.write("\n")
    with open(os.path.join(HERE, "prompt_cases.json"), "w") as f:
        json.dump({"versions": versions, "cases": prompt_cases()}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    shutil.rmtree(os.path.join(HERE, ".work"), ignore_errors=True)


if __name__ == "__main__":
    main()
