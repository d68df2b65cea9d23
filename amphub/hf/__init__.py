"""The part of the Hugging Face Hub API that huggingface_hub and transformers use.

A repo id is `{space}/{model}`; an amphub key is the token. `routes.add_routes` lists
every path; the README's "Hugging Face clients" section says what works and what not.
"""
