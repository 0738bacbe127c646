"""personae's built-in plugins. Each uses only public hooks, as a third party would."""
