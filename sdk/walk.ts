// Checked with `tsc --strict --noEmit` next to the generated delta.d.ts (sdk/generate.py copies it there):
// a change to the document that a TypeScript client would feel (a field dropped or made optional, an
// enum widened, an error shape changed) fails the check instead of failing in a client's build.
import type { components, operations } from "./delta";

type Post = components["schemas"]["Post"];
type ApiError = components["schemas"]["Error"];
type Role = components["schemas"]["User"]["role"];
type ListPostsQuery = NonNullable<operations["listPosts"]["parameters"]["query"]>;
type ListPostsOk = operations["listPosts"]["responses"][200];

// Required fields: reading them needs no guard.
export function headline(post: Post): string {
  const id: number = post.id;
  const title: string = post.title;
  const author: string = post.author.name;
  return `#${id} ${title} by ${author}`;
}

// The envelope every declared error carries.
export function describe(error: ApiError): string {
  const code: number = error.code;
  return `${code} ${error.status}: ${error.message}` + (error.errors ? ` ${Object.keys(error.errors).join(",")}` : "");
}

// The role enum is exactly these two; a third value would make this switch non-exhaustive.
export function canAdminister(role: Role): boolean {
  switch (role) {
    case "admin":
      return true;
    case "user":
      return false;
    default: {
      const unreachable: never = role;
      return unreachable;
    }
  }
}

// Paging by cursor alone: the next query is the previous response's X-Next-Cursor and nothing else.
export function nextQuery(headers: ListPostsOk["headers"]): ListPostsQuery | null {
  const cursor: string | undefined = headers["X-Next-Cursor"];
  return cursor === undefined ? null : { cursor };
}

export const sample: Post[] = [];
