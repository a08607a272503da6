"""The Flask floor: the cheapest JSON answer this stack can give, served like the app."""
from flask import Flask

app = Flask(__name__)


@app.get("/floor")
def floor():
    return {"id": 1, "name": "floor", "role": "user"}
