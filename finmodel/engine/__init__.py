"""The engine: expressions, the model graph, the timeline and the numpy evaluator."""
