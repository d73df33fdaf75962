"""Prompt-text conventions every LLM method shares, free of torch so Spark jobs can import them cheaply."""

SOFT_MARK = "<<soft-prompt>>"  # where a prompt's soft-prompt vectors go (models.llmrec.layout)
PLAIN_ANSWER_CUE = "\nAnswer:"  # ends a prompt for a model without a chat template
