"""Contract suites every implementation of a seam runs, shipped with the package (as haystack ships
`haystack.testing.document_store`) so a plugin author runs exactly the suite the built-ins run:

    from ragharness.testing.scorer import ScorerContract

    class TestMyScorer(ScorerContract):
        @pytest.fixture
        def scorer(self) -> Scorer:
            return MyScorer(ScorerContext())

Suites: `store.StoreContract`, `embedder.EmbedderContract`, `provider.ProviderContract`, `scorer.ScorerContract`,
`guardrail.GuardrailContract`, `runstore.RunStoreContract`. They need pytest (the `dev` extra); importing
`ragharness` itself never imports pytest.
"""
