"""A LangChain LCEL RAG chain over Qdrant and over Weaviate.

    python examples/langchain_rag.py            # both backends
    python examples/langchain_rag.py weaviate   # one

retriever -> prompt -> chat model -> text. The chat model is a real one when configured
(OPENAI_BASE_URL / OPENAI_API_KEY, or the local-llm extra), else a labelled fake; the
prompt the model received is printed either way.
"""

from __future__ import annotations

from _common import backends, chat_model, corpus, embeddings, langchain_store, where
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

QUESTION = "Who first walked on the Moon, and when?"

prompt = ChatPromptTemplate.from_messages([
    ("system", "Answer from the context only, in one sentence."),
    ("human", "Context:\n{context}\n\nQuestion: {question}"),
])


def format_docs(docs):
    return "\n".join(f"- [{d.id}] {d.page_content}" for d in docs)


def show_prompt(value):
    print("prompt sent to the chat model:")
    for message in value.to_messages():
        print(f"  {message.type}: " + message.content.replace("\n", "\n    "))
    return value


def main() -> None:
    embedding = embeddings()
    llm, _ = chat_model()
    texts, metadatas, ids = corpus()
    for backend in backends():
        print(f"\n=== {where(backend)} ===")
        with langchain_store(backend, "LcRagExample", embedding) as store:
            store.add_texts(texts, metadatas, ids=ids)
            retriever = store.as_retriever(search_kwargs={"k": 3})
            chain = (
                {"context": retriever | format_docs, "question": RunnablePassthrough()}
                | prompt
                | RunnableLambda(show_prompt)
                | llm
                | StrOutputParser()
            )
            print(f"question: {QUESTION}")
            answer = chain.invoke(QUESTION)
            print(f"answer: {answer}")
            store.backend.drop()


if __name__ == "__main__":
    main()
