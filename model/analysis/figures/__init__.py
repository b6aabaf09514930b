"""The report's figures: one module per figure, and the headless matplotlib they share (`plotting`)."""
