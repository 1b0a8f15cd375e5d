"""docs/models.md cannot drift from the rule files: its table is exactly what
`convert_weight models --markdown` prints from rules/*.yaml. Regenerate it with
tests/tools/update_models_doc.sh."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from cw_testlib import SOURCE, run  # noqa: E402

BEGIN, END = "<!-- models:begin -->\n", "<!-- models:end -->\n"


class ModelsDoc(unittest.TestCase):
    def test_the_table_in_docs_models_md_matches_the_rule_files(self):
        with open(os.path.join(SOURCE, "docs/models.md")) as f:
            doc = f.read()
        self.assertIn(BEGIN, doc)
        table = doc.split(BEGIN, 1)[1].split(END, 1)[0]
        self.assertEqual(table, run("models", "--markdown").stdout)

    def test_every_reference_model_key_is_served(self):
        out = run("models").stdout
        for key in ("llama", "glm-n", "qwen2", "gpt", "mixtral", "mae", "vit", "swin", "knowlm",
                    "telechat", "deepseek", "deepseek1_5"):
            with self.subTest(key=key):
                self.assertRegex(out, rf"keys: (.*, )?{key}(,|\n)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
