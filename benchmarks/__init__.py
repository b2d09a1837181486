"""TradeGuard benchmarks: python -m benchmarks [--quick]."""
