"""Locust scenario for those who prefer its UI: `locust -f bench/locustfile.py --host http://127.0.0.1:8000`.

Signs each simulated user in once (accounts from `flask --app wsgi seed`: demo0@example.com ...,
password "demo password 1"), then mixes the reads `make bench` measures. locust is not a
dependency of the project: `pip install locust` first.
"""
import random

from locust import HttpUser, between, task

DEMO_USERS = 20
PASSWORD = "demo password 1"


class ApiUser(HttpUser):
    wait_time = between(0.1, 0.5)

    def on_start(self):
        email = f"demo{random.randrange(DEMO_USERS)}@example.com"
        response = self.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    @task(4)
    def me(self):
        self.client.get("/api/v1/users/me", headers=self.headers)

    @task(4)
    def posts_page(self):
        self.client.get("/api/v1/posts?page=1&page_size=20", name="/api/v1/posts?page=1")

    @task(2)
    def a_user(self):
        self.client.get(f"/api/v1/users/{random.randint(1, DEMO_USERS)}", headers=self.headers,
                        name="/api/v1/users/{id}")

    @task(2)
    def graphql_me(self):
        self.client.post("/graphql", json={"query": "{ me { id name } }"}, headers=self.headers,
                         name="graphql me")

    @task(1)
    def graphql_nested(self):
        query = "{ users(limit: 20) { name profile { firstName } posts(limit: 5) { title author { name } } } }"
        self.client.post("/graphql", json={"query": query}, headers=self.headers, name="graphql nested")
