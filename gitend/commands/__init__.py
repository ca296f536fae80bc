"""The commands people run, one module each; `gitend.cli` dispatches to them."""
