"""Where and when next: incident counts on a grid, hotspot forecasts, and their backtest (PAI/PEI)."""
