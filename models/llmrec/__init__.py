"""The LLM-recommender pieces the LLM methods share (DELRec and the alignment method; CoRA may move here).

Enters: a local Hugging Face causal-LM folder, prompts (text with an optional soft-prompt marker) and, per
prompt, a list of candidate titles. Leaves: the model and tokenizer on CPU or CUDA (:mod:`.loading`), packed
token tensors (:mod:`.layout`), each candidate's length-normalised log-likelihood of its whole title as the
answer (:mod:`.scoring`), a soft prompt of learnable vectors (:mod:`.soft_prompt`), PEFT LoRA wrapping
(:mod:`.lora`), and the candidate-choice examples, tuning loop and batched scoring (:mod:`.tuning`);
:mod:`.text` holds the torch-free prompt conventions. PyTorch, transformers and PEFT only; nothing of jobs/.
"""
