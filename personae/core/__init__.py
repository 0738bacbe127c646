"""The persona runtime: settings, errors, hooks, plugins, cards, prompts, LLM backends."""
