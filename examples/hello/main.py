"""The demo job (scripts/demo.sh): runs inside its runtime environment, with
this directory as the working directory and `greeting` installed by pip."""
import json
import os
import sys

import greeting

print(greeting.hello(os.environ.get("GREETING_NAME", "world")))
print(f"working directory: {os.getcwd()}")
print(f"python: {sys.executable}")
print(f"files here: {sorted(os.listdir('.'))}")
config = json.loads(os.environ.get("STRATA_JOB_CONFIG_JSON", "{}"))
print(f"submission id: {config.get('metadata', {}).get('job_submission_id')}")
