import os
import pathlib
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests import the exporters as plain modules from models/.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
