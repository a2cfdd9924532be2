package keytokens;

import java.io.Closeable;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FieldInvertState;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.BoostQuery;
import org.apache.lucene.search.CollectionStatistics;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.TermStatistics;
import org.apache.lucene.search.TopScoreDocCollector;
import org.apache.lucene.search.similarities.BM25Similarity;
import org.apache.lucene.search.similarities.Similarity;
import org.apache.lucene.store.FSDirectory;

/**
 * The lean query path: terms and weights in as arrays, Lucene docids and scores out as arrays.
 *
 * It builds the query Anserini's BagOfWordsQueryGenerator builds (a BooleanQuery of boosted TermQuery clauses on
 * "contents"), scores it with the similarity SimpleImpactSearcher (score = boost x stored impact) or SimpleSearcher
 * (BM25) use, orders hits as they do (score, then the "id" doc value) and applies ScoreTiesAdjusterReranker's
 * rounding, so hits and scores are Anserini's. What it leaves out is the cost around them: no stored document is
 * loaded per hit and no object per hit crosses to Python; external ids come from a table read once. And it collects
 * by score alone with a total-hits threshold, so Lucene may skip documents that cannot enter the top (block-max
 * WAND / MaxScore), which a sort on (score, id) forbids; the id order of ties is restored afterwards (topByScoreThenId).
 */
public final class LeanSearcher implements Closeable {

  /** One query's hits: Lucene docids, scores, and the nanoseconds spent in Java. */
  public static final class Hits {
    public final int[] docs;
    public final float[] scores;
    public final long nanos;

    Hits(int[] docs, float[] scores, long nanos) {
      this.docs = docs;
      this.scores = scores;
      this.nanos = nanos;
    }
  }

  /** Anserini's ImpactSimilarity: the stored term frequency is the impact, times the query weight. */
  private static final class ImpactSimilarity extends Similarity {
    @Override
    public long computeNorm(FieldInvertState state) {
      return 1;
    }

    @Override
    public SimScorer scorer(float boost, CollectionStatistics collection, TermStatistics... terms) {
      return new SimScorer() {
        @Override
        public float score(float freq, long norm) {
          return freq * boost;
        }
      };
    }
  }

  private final DirectoryReader reader;
  private final IndexSearcher searcher;
  /** BM25 only: Anserini's own query generator and analyzer, reached by reflection (their classes need Java 21). */
  private Object generator;
  private Object analyzer;
  private Method buildQuery;
  /** External document ids by Lucene docid, read once; their UTF-8 bytes order ties as Lucene's STRING_VAL sort does. */
  public final String[] ids;
  private final byte[][] idBytes;

  public LeanSearcher(String indexDir, String similarity, float k1, float b) throws IOException {
    reader = DirectoryReader.open(FSDirectory.open(Paths.get(indexDir)));
    searcher = new IndexSearcher(reader);
    searcher.setSimilarity("bm25".equals(similarity) ? new BM25Similarity(k1, b) : new ImpactSimilarity());
    if ("bm25".equals(similarity)) {
      try {
        analyzer = Class.forName("io.anserini.analysis.DefaultEnglishAnalyzer").getMethod("newDefaultInstance").invoke(null);
        Class<?> generatorClass = Class.forName("io.anserini.search.query.BagOfWordsQueryGenerator");
        generator = generatorClass.getConstructor().newInstance();
        buildQuery = generatorClass.getMethod("buildQuery", String.class, Analyzer.class, String.class);
      } catch (ReflectiveOperationException e) {
        throw new IOException("Anserini's BagOfWordsQueryGenerator is not on the classpath", e);
      }
    }
    ids = new String[reader.maxDoc()];
    idBytes = new byte[ids.length][];
    StoredFields stored = reader.storedFields();
    for (int doc = 0; doc < ids.length; doc++) {
      ids[doc] = stored.document(doc).get("id");
      idBytes[doc] = ids[doc] == null ? new byte[0] : ids[doc].getBytes(StandardCharsets.UTF_8);
    }
  }

  /** A weighted bag of terms (impact queries): the BooleanQuery Anserini's generator builds from a term map. */
  public Hits search(String[] terms, float[] weights, int k) throws IOException {
    long start = System.nanoTime();
    Map<String, Float> query = new HashMap<>();
    for (int i = 0; i < terms.length; i++) {
      query.put(terms[i], weights[i]);
    }
    BooleanQuery.Builder builder = new BooleanQuery.Builder();
    for (String term : query.keySet()) {
      builder.add(new BoostQuery(new TermQuery(new Term("contents", term)), query.get(term)), BooleanClause.Occur.SHOULD);
    }
    return top(builder.build(), k, start);
  }

  /** A query text (BM25): analysed and built by Anserini's own BagOfWordsQueryGenerator, clause order included. */
  public Hits searchText(String text, int k) throws IOException {
    long start = System.nanoTime();
    try {
      return top((Query) buildQuery.invoke(generator, "contents", analyzer, text), k, start);
    } catch (ReflectiveOperationException e) {
      throw new IOException(e);
    }
  }

  /**
   * The top k by (score desc, id asc), Anserini's order, collected by score alone (Lucene breaks ties by docid) with
   * a total-hits threshold of n, so whole blocks that cannot reach the top are skipped. Only the docs tied with the
   * k-th score can differ between the two orders, so it asks for more hits until the last one scores below the k-th
   * (or the query has no more matches): then every doc tied with the k-th is in hand, and sorting by (score, id)
   * and cutting at k gives exactly the sorted search's hits.
   */
  private ScoreDoc[] topByScoreThenId(Query query, int k) throws IOException {
    int n = k + 1;
    while (true) {
      TopScoreDocCollector collector = TopScoreDocCollector.create(n, n);
      searcher.search(query, collector);
      ScoreDoc[] hits = collector.topDocs().scoreDocs;
      if (hits.length < n || hits[n - 1].score < hits[k - 1].score) {
        Arrays.sort(hits, (a, b) -> a.score != b.score ? Float.compare(b.score, a.score)
            : Arrays.compareUnsigned(idBytes[a.doc], idBytes[b.doc]));
        return hits.length > k ? Arrays.copyOf(hits, k) : hits;
      }
      n = (int) Math.min((long) n * 2, Integer.MAX_VALUE - 8);
    }
  }

  private Hits top(Query query, int k, long start) throws IOException {
    ScoreDoc[] hits = k > 0 ? topByScoreThenId(query, k) : new ScoreDoc[0];
    int[] docs = new int[hits.length];
    float[] scores = new float[hits.length];
    int dup = 0;
    for (int i = 0; i < hits.length; i++) {
      docs[i] = hits[i].doc;
      scores[i] = (float) (Math.round((double) hits[i].score * 10000.0) / 10000.0);  // ScoreTiesAdjusterReranker's
      if (i == 0 || scores[i - 1] - scores[i] > 1e-4f) {
        dup = 0;
      } else {
        dup++;
        scores[i] -= 1e-6f * dup;
      }
    }
    return new Hits(docs, scores, System.nanoTime() - start);
  }

  /** Many queries in one call: query q's terms are terms[offsets[q] .. offsets[q + 1]). */
  public Hits[] batch(String[] terms, float[] weights, int[] offsets, int k, int threads) throws Exception {
    return parallel(offsets.length - 1, threads, query -> {
      int from = offsets[query];
      int to = offsets[query + 1];
      String[] t = new String[to - from];
      float[] w = new float[to - from];
      System.arraycopy(terms, from, t, 0, to - from);
      System.arraycopy(weights, from, w, 0, to - from);
      return search(t, w, k);
    });
  }

  /** Many query texts in one call (BM25). */
  public Hits[] batchText(String[] texts, int k, int threads) throws Exception {
    return parallel(texts.length, threads, query -> searchText(texts[query], k));
  }

  private interface QueryTask {
    Hits run(int query) throws Exception;
  }

  private static Hits[] parallel(int count, int threads, QueryTask task) throws Exception {
    Hits[] out = new Hits[count];
    ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, threads));
    try {
      Future<?>[] pending = new Future<?>[count];
      for (int q = 0; q < count; q++) {
        final int query = q;
        pending[q] = pool.submit(() -> {
          out[query] = task.run(query);
          return null;
        });
      }
      for (Future<?> f : pending) {
        f.get();
      }
    } finally {
      pool.shutdown();
    }
    return out;
  }

  @Override
  public void close() throws IOException {
    reader.close();
  }
}
