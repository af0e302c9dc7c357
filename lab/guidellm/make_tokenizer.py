"""Write a small offline tokenizer for guidellm's synthetic prompts.

guidellm counts prompt tokens with a Hugging Face tokenizer and downloads the
model's one by default; the lab has no Hub access and the simulator does not
care which tokenizer sized the prompts. One token per character keeps it tiny.
Usage: python make_tokenizer.py DIR (run with the guidellm venv's python).
"""
import json
import os
import string
import sys

from tokenizers import Tokenizer, models, pre_tokenizers


def main(directory):
    vocab = {"[UNK]": 0}
    for char in string.printable:
        vocab.setdefault(char, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    os.makedirs(directory, exist_ok=True)
    tokenizer.save(os.path.join(directory, "tokenizer.json"))
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as handle:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]",
                   "model_max_length": 1000000}, handle)


if __name__ == "__main__":
    main(sys.argv[1])
