"""schemas/rules.schema.json, the editors' description of rule files, agrees with the loader: it
accepts every shipped rule file and rejects the broken files whose fault is structural (the C++
loader remains the authority for semantic checks: cycles, overlaps, placeholder binding)."""
import glob
import json
import os
import sys
import unittest

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cw_testlib import SOURCE  # noqa: E402

STRUCTURAL_FAULTS = [
    "bad_dtype", "bad_param_type", "bad_pattern_brace", "concat_without_sizes", "copy_of_with_ms_side",
    "count_of_without_pattern", "drop_both_sides",
    "missing_name", "one_sided_without_drop", "reshape_without_from", "tied_with_ops",
    "unknown_folder_layout", "unknown_op", "unknown_rule_key", "unknown_top_key", "when_on_concat",
]


class RulesSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(SOURCE, "schemas/rules.schema.json")) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        cls.validator = jsonschema.Draft202012Validator(schema)

    def errors(self, path):
        with open(path) as f:
            return list(self.validator.iter_errors(yaml.safe_load(f)))

    def test_every_shipped_rule_file_is_valid(self):
        files = sorted(glob.glob(os.path.join(SOURCE, "rules/*.yaml")))
        self.assertGreaterEqual(len(files), 2)
        for f in files:
            with self.subTest(f=f):
                self.assertEqual([e.message for e in self.errors(f)], [])

    def test_structurally_broken_rule_files_are_rejected(self):
        for name in STRUCTURAL_FAULTS:
            with self.subTest(name=name):
                self.assertNotEqual(self.errors(os.path.join(SOURCE, "tests/data/bad_rules", name + ".yaml")), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
