"""Runs inside a Strata runtime environment (see scripts/demo.sh)."""
import os
import sys

print(f"hello from {os.getcwd()}")
print(f"GREETING={os.environ.get('GREETING')}")
print(f"python={sys.executable}")
