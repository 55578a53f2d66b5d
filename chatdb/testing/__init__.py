"""For test suites and benchmarks: throwaway servers, datasets, the pytest plugin."""
